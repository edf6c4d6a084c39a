//! What may be asked of an order.

use chrono::{DateTime, Utc};

use crate::ids::{OrderId, UserId};
use crate::messages::CancelRequester;
use crate::order::{OrderStatus, ValidatedOrder};

#[derive(Clone, Debug, PartialEq)]
pub enum OrderCommand {
    /// Place a new order in `PENDING`.
    Place {
        order_id: OrderId,
        customer_id: UserId,
        order: ValidatedOrder,
        at: DateTime<Utc>,
    },
    /// Move the order to `status`. `runner_id` names the runner who accepts, or the
    /// runner who reports a delivery stage.
    ChangeStatus {
        status: OrderStatus,
        runner_id: Option<UserId>,
        at: DateTime<Utc>,
    },
    Cancel {
        reason: String,
        requested_by: CancelRequester,
        /// For a timeout: the `CREATED` time its timer was started for.
        expected_created_at: Option<DateTime<Utc>>,
        at: DateTime<Utc>,
    },
}
