//! What may follow a delivery, decided from the order alone: completing it,
//! releasing its escrow to its runner, and its parties rating each other. The
//! API asks these before it starts a saga or sends a command.

use crate::ids::{OrderId, UserId};
use crate::messages::OrderRole;

use super::{Order, OrderStatus};

/// What completing an order does, by the order as it stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Completion {
    /// Delivered: the complete-order saga starts, to pay this runner.
    Start { runner_id: UserId },
    /// Completed already: by its saga, if it has one, which is the answer.
    Done,
}

/// Why what follows a delivery cannot happen (yet).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AfterDeliveryRefusal {
    #[error("order {order_id} is {status}; only a DELIVERED order can be completed")]
    NotDelivered { order_id: OrderId, status: OrderStatus },
    #[error("order {order_id} is {status}; its escrow is released only once it is DELIVERED")]
    NotReleasable { order_id: OrderId, status: OrderStatus },
    #[error("{runner_id} is not the runner of order {order_id}; its escrow goes to its runner only")]
    NotTheRunner { order_id: OrderId, runner_id: UserId },
    #[error("order {order_id} is {status}; it can be rated once it is COMPLETED")]
    NotRateable { order_id: OrderId, status: OrderStatus },
    /// The only refusal that is about who asks, not about the order's state.
    #[error("{rater_id} is neither the customer nor the runner of order {order_id}")]
    NotAParty { order_id: OrderId, rater_id: UserId },
    #[error("the order has no one to rate")]
    NobodyToRate,
}

impl Order {
    fn current_status(&self) -> OrderStatus {
        self.status.unwrap_or(OrderStatus::Pending)
    }

    /// Whether order `order_id` (this order) may be completed, and how.
    pub fn completion(&self, order_id: OrderId) -> Result<Completion, AfterDeliveryRefusal> {
        match (self.current_status(), &self.runner_id) {
            (OrderStatus::Delivered, Some(runner_id)) => Ok(Completion::Start {
                runner_id: runner_id.clone(),
            }),
            (OrderStatus::Completed, _) => Ok(Completion::Done),
            (status, _) => Err(AfterDeliveryRefusal::NotDelivered { order_id, status }),
        }
    }

    /// Whether the order's escrow may go to `runner_id`: only to its runner,
    /// only once delivered. (The capture of its payment is the payment's to say.)
    pub fn releases_escrow_to(&self, order_id: OrderId, runner_id: &UserId) -> Result<(), AfterDeliveryRefusal> {
        let status = self.current_status();
        if !matches!(status, OrderStatus::Delivered | OrderStatus::Completed) {
            return Err(AfterDeliveryRefusal::NotReleasable { order_id, status });
        }
        if self.runner_id.as_ref() != Some(runner_id) {
            return Err(AfterDeliveryRefusal::NotTheRunner {
                order_id,
                runner_id: runner_id.clone(),
            });
        }
        Ok(())
    }

    /// Whom `rater_id` rates on this order, and in which role: the customer
    /// rates the runner and the runner the customer, once the order is completed.
    pub fn rated_by(&self, order_id: OrderId, rater_id: &UserId) -> Result<(UserId, OrderRole), AfterDeliveryRefusal> {
        let status = self.current_status();
        if status != OrderStatus::Completed {
            return Err(AfterDeliveryRefusal::NotRateable { order_id, status });
        }
        let (rated, role) = if self.customer_id.as_ref() == Some(rater_id) {
            (self.runner_id.clone(), OrderRole::Runner)
        } else if self.runner_id.as_ref() == Some(rater_id) {
            (self.customer_id.clone(), OrderRole::Customer)
        } else {
            return Err(AfterDeliveryRefusal::NotAParty {
                order_id,
                rater_id: rater_id.clone(),
            });
        };
        let rated = rated.ok_or(AfterDeliveryRefusal::NobodyToRate)?;
        Ok((rated, role))
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    fn user(id: &str) -> UserId {
        UserId::parse(id).unwrap()
    }

    fn order(status: OrderStatus, runner: Option<&str>) -> Order {
        Order {
            customer_id: Some(user("customer")),
            runner_id: runner.map(user),
            status: Some(status),
            ..Order::default()
        }
    }

    fn id() -> OrderId {
        OrderId(uuid::Uuid::from_u128(1))
    }

    #[test]
    fn a_delivered_order_completes_by_paying_its_runner() {
        let completion = order(OrderStatus::Delivered, Some("runner")).completion(id());
        assert_eq!(
            completion,
            Ok(Completion::Start {
                runner_id: user("runner")
            })
        );
        let again = order(OrderStatus::Completed, Some("runner")).completion(id());
        assert_eq!(again, Ok(Completion::Done));
    }

    #[rstest]
    #[case::accepted(OrderStatus::Accepted)]
    #[case::collected(OrderStatus::Collected)]
    #[case::cancelled(OrderStatus::Cancelled)]
    fn an_order_not_yet_delivered_does_not_complete(#[case] status: OrderStatus) {
        let refused = order(status, Some("runner")).completion(id());
        assert_eq!(
            refused,
            Err(AfterDeliveryRefusal::NotDelivered { order_id: id(), status })
        );
    }

    #[test]
    fn the_escrow_goes_to_the_order_s_runner_once_delivered() {
        let delivered = order(OrderStatus::Delivered, Some("runner"));
        assert_eq!(delivered.releases_escrow_to(id(), &user("runner")), Ok(()));
        assert!(matches!(
            delivered.releases_escrow_to(id(), &user("someone")),
            Err(AfterDeliveryRefusal::NotTheRunner { .. })
        ));
        let on_its_way = order(OrderStatus::OnTheWay, Some("runner"));
        assert!(matches!(
            on_its_way.releases_escrow_to(id(), &user("runner")),
            Err(AfterDeliveryRefusal::NotReleasable { .. })
        ));
    }

    #[test]
    fn each_party_rates_the_other_once_completed_and_nobody_else_rates() {
        let completed = order(OrderStatus::Completed, Some("runner"));
        assert_eq!(
            completed.rated_by(id(), &user("customer")),
            Ok((user("runner"), OrderRole::Runner))
        );
        assert_eq!(
            completed.rated_by(id(), &user("runner")),
            Ok((user("customer"), OrderRole::Customer))
        );
        assert!(matches!(
            completed.rated_by(id(), &user("stranger")),
            Err(AfterDeliveryRefusal::NotAParty { .. })
        ));
        let delivered = order(OrderStatus::Delivered, Some("runner"));
        assert!(matches!(
            delivered.rated_by(id(), &user("customer")),
            Err(AfterDeliveryRefusal::NotRateable { .. })
        ));
    }
}
