//! Turning events into notifications.

use async_trait::async_trait;

use campusg_domain::messages::{Message, NotificationCreated};
use campusg_domain::notification::{
    compose, notification_id, Notification, NotificationCommand, NotificationError, OrderParties,
};
use campusg_runtime::aggregate::{execute, load, load_from_read_model};
use campusg_runtime::consumer::{HandlerError, MessageHandler};
use campusg_runtime::envelope::Envelope;
use campusg_runtime::store::{Cause, UnitOfWork};

use crate::{NotificationService, CONSUMER_GROUP, SERVICE_NAME};

#[async_trait]
impl MessageHandler for NotificationService {
    async fn handle(&self, envelope: &Envelope, message: Message) -> Result<(), HandlerError> {
        let Some(order_id) = message.order_id() else {
            return Ok(());
        };
        // Of a saga's progress, only an anomaly is anyone's news.
        if message.message_type().starts_with("saga.") && !matches!(message, Message::SagaAnomalyRecorded(_)) {
            return Ok(());
        }
        let cause = Cause::message(envelope, CONSUMER_GROUP, SERVICE_NAME, self.deps.clock.now());
        let mut unit = UnitOfWork::new(cause);
        let mut parties = load_from_read_model::<OrderParties>(self.deps.store.as_ref(), &order_id.to_string()).await?;
        // Who is told is decided by the parties as they were before the event:
        // a runner who gives an order back is still told so.
        for draft in compose(&message, &parties.aggregate) {
            let notification = NotificationCreated {
                notification_id: notification_id(&message, &draft.recipient),
                user_id: draft.recipient,
                order_id: Some(order_id),
                kind: draft.kind.to_string(),
                title: draft.title,
                message: draft.message,
                // When what it tells of happened, so that a person's list is in
                // the order things happened whatever order the topics are read in.
                created_at: envelope.timestamp,
            };
            self.create_in(notification, &mut unit).await?;
        }
        let after = parties.aggregate.after(&message);
        let changed = execute(&mut parties, after, &())
            .await
            .unwrap_or_else(|never| match never {});
        unit.append_unpublished(&mut parties, &changed);
        self.deps.store.commit(unit).await?;
        Ok(())
    }
}

impl NotificationService {
    /// Creates `notification` in `unit`; one that exists already is left as it is.
    pub(crate) async fn create_in(
        &self,
        notification: NotificationCreated,
        unit: &mut UnitOfWork,
    ) -> Result<Option<Notification>, HandlerError> {
        let id = notification.notification_id.to_string();
        let mut loaded = load::<Notification>(self.deps.store.as_ref(), &id).await?;
        let published = Message::NotificationCreated(notification.clone());
        match execute(&mut loaded, NotificationCommand::Create(notification), &()).await {
            Ok(events) => {
                unit.publish(&self.deps.contracts, &published)
                    .map_err(|e| HandlerError::Rejected(format!("the notification does not publish: {e}")))?;
                unit.append_unpublished(&mut loaded, &events);
                Ok(Some(loaded.aggregate))
            }
            Err(NotificationError::AlreadyCreated(_)) => Ok(None),
            Err(refusal) => Err(HandlerError::Rejected(refusal.to_string())),
        }
    }
}
