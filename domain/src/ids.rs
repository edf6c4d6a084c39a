//! Identifiers.
//!
//! Orders, sagas, payments and escrows are named by UUIDs. Users are named by
//! strings, because the seeds' hand-written messages use ids such as `cust_123`.
//!
//! A hand-written `create_order` may leave the order id out. The id is then derived
//! from the saga id (UUID v5), so the same command published twice still names one
//! order. Payments and escrows are one per order, so their ids are derived from
//! the order id the same way, and any service can name them without a lookup.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The namespace under which campusg derives UUID v5 ids.
const CAMPUSG_NAMESPACE: Uuid = Uuid::from_u128(0x6d1f_4a0e_8c7b_4f5e_9a3d_2b1c_0e9f_8a7b);

macro_rules! uuid_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            pub fn parse(text: &str) -> Result<Self, uuid::Error> {
                Uuid::parse_str(text).map($name)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

uuid_id!(
    /// One order.
    OrderId
);
uuid_id!(
    /// One saga instance; the correlation id of every message it causes.
    SagaId
);
uuid_id!(
    /// The card authorization of one order.
    PaymentId
);
uuid_id!(
    /// The escrow account of one order.
    EscrowId
);
uuid_id!(
    /// One durable timer.
    TimerId
);
uuid_id!(
    /// One refund of a captured payment; its refund saga's id.
    RefundId
);

impl OrderId {
    /// The order a create-order saga creates when its command does not name one.
    pub fn for_saga(saga_id: SagaId) -> OrderId {
        OrderId(Uuid::new_v5(&CAMPUSG_NAMESPACE, format!("order:{saga_id}").as_bytes()))
    }
}

impl SagaId {
    /// The saga a message's correlation id names. A correlation id that is not a
    /// UUID (a person may write any string) names the saga derived from it.
    pub fn from_correlation(correlation_id: &str) -> SagaId {
        match Uuid::parse_str(correlation_id) {
            Ok(uuid) => SagaId(uuid),
            Err(_) => SagaId(Uuid::new_v5(
                &CAMPUSG_NAMESPACE,
                format!("saga:{correlation_id}").as_bytes(),
            )),
        }
    }

    /// The create-order saga a request names by its idempotency key (the
    /// caller's id and key): the same request, run again, starts no second saga.
    pub fn for_request(request_key: &str) -> SagaId {
        SagaId(Uuid::new_v5(
            &CAMPUSG_NAMESPACE,
            format!("request:{request_key}").as_bytes(),
        ))
    }

    /// The complete-order saga of an order: an order is completed once, so
    /// every way of starting it names the same saga.
    pub fn for_completion(order_id: OrderId) -> SagaId {
        SagaId(Uuid::new_v5(
            &CAMPUSG_NAMESPACE,
            format!("complete:{order_id}").as_bytes(),
        ))
    }

    /// The accept-order saga of a runner's acceptance of an order: the first
    /// acceptance is round 1, an acceptance after a runner gave the order back is
    /// round 2, and so on. The same acceptance asked for twice names one saga.
    pub fn for_acceptance(order_id: OrderId, round: u32) -> SagaId {
        SagaId(Uuid::new_v5(
            &CAMPUSG_NAMESPACE,
            format!("accept:{order_id}:{round}").as_bytes(),
        ))
    }
}

impl TimerId {
    /// The timer a command starts: the same command delivered twice names one timer.
    pub fn for_command(message_id: Uuid) -> TimerId {
        TimerId(Uuid::new_v5(
            &CAMPUSG_NAMESPACE,
            format!("timer:{message_id}").as_bytes(),
        ))
    }
}

impl PaymentId {
    pub fn for_order(order_id: OrderId) -> PaymentId {
        PaymentId(Uuid::new_v5(
            &CAMPUSG_NAMESPACE,
            format!("payment:{order_id}").as_bytes(),
        ))
    }
}

impl EscrowId {
    pub fn for_order(order_id: OrderId) -> EscrowId {
        EscrowId(Uuid::new_v5(
            &CAMPUSG_NAMESPACE,
            format!("escrow:{order_id}").as_bytes(),
        ))
    }
}

/// A user (customer or runner). Ids are chosen by whoever registers the user.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a user id is 1 to 64 letters, digits, `_`, `-` or `.`, not `{0}`")]
pub struct InvalidUserId(String);

impl UserId {
    pub fn parse(text: &str) -> Result<UserId, InvalidUserId> {
        let valid = !text.is_empty()
            && text.len() <= 64
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if valid {
            Ok(UserId(text.to_string()))
        } else {
            Err(InvalidUserId(text.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for UserId {
    type Error = InvalidUserId;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        UserId::parse(&text)
    }
}

impl From<UserId> for String {
    fn from(id: UserId) -> String {
        id.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable_and_distinct() {
        let saga = SagaId(Uuid::from_u128(7));
        assert_eq!(OrderId::for_saga(saga), OrderId::for_saga(saga));
        let order = OrderId::for_saga(saga);
        assert_ne!(PaymentId::for_order(order).0, EscrowId::for_order(order).0);
    }

    #[test]
    fn user_ids_in_the_seeds_format_are_accepted_and_odd_ones_refused() {
        assert!(UserId::parse("cust_123").is_ok());
        assert!(UserId::parse("").is_err());
        assert!(UserId::parse("a b").is_err());
    }
}
