//! The order's statuses and the one table of legal moves between them.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    /// Placed, awaiting payment.
    Pending,
    /// Paid and held in escrow, waiting for a runner.
    Created,
    Accepted,
    OnSite,
    Purchased,
    Collected,
    OnTheWay,
    Delivered,
    Completed,
    Cancelled,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 10] = [
        OrderStatus::Pending,
        OrderStatus::Created,
        OrderStatus::Accepted,
        OrderStatus::OnSite,
        OrderStatus::Purchased,
        OrderStatus::Collected,
        OrderStatus::OnTheWay,
        OrderStatus::Delivered,
        OrderStatus::Completed,
        OrderStatus::Cancelled,
    ];

    /// Whether an order in `self` may move to `next`. This is the whole transition
    /// table; every status change in the system goes through it.
    pub fn can_become(self, next: OrderStatus) -> bool {
        use OrderStatus::*;
        matches!(
            (self, next),
            (Pending, Created)
                | (Pending, Cancelled)
                | (Created, Accepted)
                | (Created, Cancelled)
                | (Accepted, OnSite)
                | (Accepted, Cancelled)
                // A runner may give the order back before buying the food.
                | (Accepted, Created)
                | (OnSite, Created)
                | (OnSite, Purchased)
                | (Purchased, Collected)
                | (Collected, OnTheWay)
                | (OnTheWay, Delivered)
                | (Delivered, Completed)
        )
    }

    /// The delivery stages, which only the assigned runner may reach.
    pub fn is_delivery_stage(self) -> bool {
        use OrderStatus::*;
        matches!(self, OnSite | Purchased | Collected | OnTheWay | Delivered)
    }

    pub fn as_str(self) -> &'static str {
        use OrderStatus::*;
        match self {
            Pending => "PENDING",
            Created => "CREATED",
            Accepted => "ACCEPTED",
            OnSite => "ON_SITE",
            Purchased => "PURCHASED",
            Collected => "COLLECTED",
            OnTheWay => "ON_THE_WAY",
            Delivered => "DELIVERED",
            Completed => "COMPLETED",
            Cancelled => "CANCELLED",
        }
    }

    pub fn parse(text: &str) -> Option<OrderStatus> {
        OrderStatus::ALL.into_iter().find(|status| status.as_str() == text)
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::OrderStatus::{self, *};

    #[rstest]
    #[case(Pending, Created)]
    #[case(Created, Accepted)]
    #[case(Accepted, OnSite)]
    #[case(OnSite, Purchased)]
    #[case(Purchased, Collected)]
    #[case(Collected, OnTheWay)]
    #[case(OnTheWay, Delivered)]
    #[case(Delivered, Completed)]
    #[case(Pending, Cancelled)]
    #[case(Created, Cancelled)]
    #[case(Accepted, Cancelled)]
    #[case(Accepted, Created)]
    fn legal_moves_are_allowed(#[case] from: OrderStatus, #[case] to: OrderStatus) {
        assert!(from.can_become(to));
    }

    #[rstest]
    #[case(Pending, Accepted)]
    #[case(Created, OnSite)]
    #[case(Purchased, Cancelled)]
    #[case(Purchased, Created)]
    #[case(Delivered, Cancelled)]
    #[case(Completed, Cancelled)]
    #[case(Cancelled, Created)]
    #[case(OnTheWay, Collected)]
    fn skipping_or_going_back_is_refused(#[case] from: OrderStatus, #[case] to: OrderStatus) {
        assert!(!from.can_become(to));
    }

    #[test]
    fn nothing_leaves_a_final_status() {
        for next in OrderStatus::ALL {
            assert!(!Completed.can_become(next));
            assert!(!Cancelled.can_become(next));
        }
    }

    #[test]
    fn status_names_round_trip() {
        for status in OrderStatus::ALL {
            assert_eq!(OrderStatus::parse(status.as_str()), Some(status));
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
        }
    }
}
