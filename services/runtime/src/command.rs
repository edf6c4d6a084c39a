//! One shape for every service that takes commands (order, user, payment,
//! escrow, timer): a command runs, its outcome is committed under its
//! [`Cause`], and the answer the service published, if it answers one, comes
//! back. The consumer and the HTTP API run the same [`CommandService::handle_command`];
//! only the cause differs. The services that react to events instead (the
//! sagas, the notifications, the ledger, the trace index) implement
//! [`MessageHandler`] themselves.

use async_trait::async_trait;

use campusg_domain::messages::Message;

use crate::clock::Clock;
use crate::consumer::{HandlerError, MessageHandler};
use crate::envelope::Envelope;
use crate::service::ServiceDescription;
use crate::store::Cause;

#[async_trait]
pub trait CommandService: Send + Sync + 'static {
    /// Its consumer group and `source` name the cause of what it handles.
    const DESCRIPTION: ServiceDescription;

    fn clock(&self) -> &dyn Clock;

    /// Runs `message` and commits its outcome under `cause`; the answer it
    /// published, if it answers one (the API shows it to the caller).
    async fn handle_command(&self, message: Message, cause: Cause) -> Result<Option<Message>, HandlerError>;
}

/// A command from a topic is caused by its message, handled by the service's group.
#[async_trait]
impl<S: CommandService> MessageHandler for S {
    async fn handle(&self, envelope: &Envelope, message: Message) -> Result<(), HandlerError> {
        let service = &S::DESCRIPTION;
        let cause = Cause::message(envelope, service.consumer_group, service.source, self.clock().now());
        self.handle_command(message, cause).await.map(drop)
    }
}
