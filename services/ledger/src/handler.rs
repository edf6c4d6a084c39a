//! How the ledger service posts each money event.

use async_trait::async_trait;

use campusg_domain::ledger::{entry_for, LedgerCommand, OrderLedger};
use campusg_domain::messages::Message;
use campusg_runtime::aggregate::{execute, load_from_read_model};
use campusg_runtime::consumer::{HandlerError, MessageHandler};
use campusg_runtime::envelope::Envelope;
use campusg_runtime::store::{Cause, UnitOfWork};

use crate::{LedgerService, CONSUMER_GROUP, SERVICE_NAME};

#[async_trait]
impl MessageHandler for LedgerService {
    async fn handle(&self, envelope: &Envelope, message: Message) -> Result<(), HandlerError> {
        let Some((order_id, party, entry)) = entry_for(&message) else {
            return Ok(());
        };
        let cause = Cause::message(envelope, CONSUMER_GROUP, SERVICE_NAME, self.deps.clock.now());
        let mut loaded = load_from_read_model::<OrderLedger>(self.deps.store.as_ref(), &order_id.to_string()).await?;
        // A source posted before for another amount is refused, and the record
        // goes to the dead letters, where an operator sees the disagreement.
        let events = execute(&mut loaded, LedgerCommand::Post { order_id, party, entry }, &())
            .await
            .map_err(|refusal| HandlerError::Rejected(refusal.to_string()))?;
        let mut unit = UnitOfWork::new(cause);
        unit.append_unpublished(&mut loaded, &events);
        self.deps.store.commit(unit).await?;
        Ok(())
    }
}
