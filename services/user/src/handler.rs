//! How the user service answers each command.

use async_trait::async_trait;

use campusg_domain::ids::UserId;
use campusg_domain::messages::{
    GetPaymentInfo, GetPayoutAccount, Message, PaymentInfoFailed, PaymentInfoFailure, PaymentInfoRetrieved,
    PayoutAccountMissing, PayoutAccountRetrieved,
};
use campusg_domain::user::{User, UserCommand, UserError};
use campusg_runtime::aggregate::{execute, load};
use campusg_runtime::clock::Clock;
use campusg_runtime::command::CommandService;
use campusg_runtime::consumer::HandlerError;
use campusg_runtime::service::ServiceDescription;
use campusg_runtime::store::{Cause, UnitOfWork};

use crate::UserService;

#[async_trait]
impl CommandService for UserService {
    const DESCRIPTION: ServiceDescription = crate::DESCRIPTION;

    fn clock(&self) -> &dyn Clock {
        self.deps.clock.as_ref()
    }

    /// Runs one command from a topic: a refusal is one for good.
    async fn handle_command(&self, message: Message, cause: Cause) -> Result<Option<Message>, HandlerError> {
        match self.run_command(message, cause).await {
            // A duplicate registration of the same user changes nothing.
            Err(CommandError::Refused(UserError::AlreadyRegistered(_))) => Ok(None),
            Err(CommandError::Refused(refusal)) => Err(HandlerError::Rejected(refusal.to_string())),
            Err(CommandError::Handler(error)) => Err(error),
            Ok(()) => Ok(None),
        }
    }
}

/// A command's failure: refused by the user aggregate, or unable to run.
#[derive(Debug)]
pub enum CommandError {
    Refused(UserError),
    Handler(HandlerError),
}

impl From<campusg_runtime::store::StoreError> for CommandError {
    fn from(error: campusg_runtime::store::StoreError) -> CommandError {
        CommandError::Handler(error.into())
    }
}

impl UserService {
    /// Runs one command and commits its outcome; a refusal comes back typed,
    /// for the HTTP API to answer 404, 409 or 422 (a topic's command goes
    /// through [`CommandService::handle_command`], which runs this).
    pub async fn run_command(&self, message: Message, cause: Cause) -> Result<(), CommandError> {
        let mut unit = UnitOfWork::new(cause);
        let at = unit.cause.at;
        let (user_id, command) = match message {
            Message::CreateUser(details) => (details.user_id.clone(), UserCommand::Register { details, at }),
            Message::UpdateUser(changes) => (changes.user_id.clone(), UserCommand::Update { changes, at }),
            Message::RateUser(rating) => (rating.user_id.clone(), UserCommand::Rate { rating, at }),
            Message::GetPaymentInfo(request) => {
                self.payment_info(request, &mut unit).await?;
                self.deps.store.commit(unit).await?;
                return Ok(());
            }
            Message::GetPayoutAccount(request) => {
                self.payout_account(request, &mut unit).await?;
                self.deps.store.commit(unit).await?;
                return Ok(());
            }
            _ => return Ok(()),
        };
        let mut loaded = load::<User>(self.deps.store.as_ref(), user_id.as_str()).await?;
        let events = execute(&mut loaded, command, &())
            .await
            .map_err(CommandError::Refused)?;
        unit.append(&self.deps.contracts, &mut loaded, &events, true)
            .map_err(published)?;
        self.deps.store.commit(unit).await?;
        Ok(())
    }

    /// A user as they stand, if they exist.
    pub async fn find(&self, user_id: &UserId) -> Result<Option<User>, campusg_runtime::store::StoreError> {
        let loaded = load::<User>(self.deps.store.as_ref(), user_id.as_str()).await?;
        Ok(loaded.aggregate.user_id.is_some().then_some(loaded.aggregate))
    }

    async fn payment_info(&self, request: GetPaymentInfo, unit: &mut UnitOfWork) -> Result<(), CommandError> {
        let loaded = load::<User>(self.deps.store.as_ref(), request.customer_id.as_str()).await?;
        let user = loaded.aggregate;
        let answer = match (&user.user_id, user.payment_method) {
            (None, _) => Message::PaymentInfoFailed(PaymentInfoFailed {
                message: format!("user {} does not exist", request.customer_id),
                customer_id: request.customer_id,
                order_id: request.order_id,
                reason: PaymentInfoFailure::UserNotFound,
            }),
            (Some(_), None) => Message::PaymentInfoFailed(PaymentInfoFailed {
                message: format!("user {} has no saved payment method", request.customer_id),
                customer_id: request.customer_id,
                order_id: request.order_id,
                reason: PaymentInfoFailure::NoPaymentMethod,
            }),
            (Some(_), Some(payment_method)) => Message::PaymentInfoRetrieved(PaymentInfoRetrieved {
                customer_id: request.customer_id,
                order_id: request.order_id,
                payment_method,
            }),
        };
        unit.publish(&self.deps.contracts, &answer).map_err(published)?;
        Ok(())
    }
}

impl UserService {
    /// Answers with the runner's payout account; without one, the user records
    /// that the order's payout awaits it (so that adding it later is announced
    /// for the order) and answers that it is missing.
    async fn payout_account(&self, request: GetPayoutAccount, unit: &mut UnitOfWork) -> Result<(), CommandError> {
        let mut loaded = load::<User>(self.deps.store.as_ref(), request.runner_id.as_str()).await?;
        if let Some(payout_account) = loaded.aggregate.payout_account.clone() {
            let answer = Message::PayoutAccountRetrieved(PayoutAccountRetrieved {
                runner_id: request.runner_id,
                order_id: request.order_id,
                payout_account,
            });
            return unit
                .publish(&self.deps.contracts, &answer)
                .map(|_| ())
                .map_err(published);
        }
        let command = UserCommand::AwaitPayoutAccount {
            runner_id: request.runner_id.clone(),
            order_id: request.order_id,
            at: unit.cause.at,
        };
        let events = execute(&mut loaded, command, &())
            .await
            .map_err(CommandError::Refused)?;
        if events.is_empty() {
            // Asked again while it waits: the same answer, nothing new recorded.
            let answer = Message::PayoutAccountMissing(PayoutAccountMissing {
                runner_id: request.runner_id,
                order_id: request.order_id,
                awaited_at: unit.cause.at,
            });
            return unit
                .publish(&self.deps.contracts, &answer)
                .map(|_| ())
                .map_err(published);
        }
        unit.append(&self.deps.contracts, &mut loaded, &events, true)
            .map_err(published)
    }
}

fn published(error: impl std::fmt::Display) -> CommandError {
    CommandError::Handler(HandlerError::Rejected(format!(
        "the user service could not publish its answer: {error}"
    )))
}
