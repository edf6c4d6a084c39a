//! Every service of campusg, listed once, with the role that runs it.
//!
//! Start-up opens their stores, runs their consumers and relays their outboxes;
//! `campusg replay` finds the store of an aggregate type and replays it;
//! `campusg dlq`, the bench and the tests walk their stores: all from this
//! list, which each service fills with what it declares of itself
//! ([`ServiceDescription`]). A new service is one line here.

use campusg_runtime::service::{AggregateKind, ServiceDescription};

use crate::settings::Role;

pub static SERVICES: [(Role, ServiceDescription); 9] = [
    (Role::Order, campusg_order::DESCRIPTION),
    (Role::User, campusg_user::DESCRIPTION),
    (Role::Payment, campusg_payment::DESCRIPTION),
    (Role::Escrow, campusg_escrow::DESCRIPTION),
    (Role::Sagas, campusg_sagas::DESCRIPTION),
    (Role::Timer, campusg_timer::DESCRIPTION),
    (Role::Notification, campusg_notification::DESCRIPTION),
    (Role::Trace, campusg_trace::DESCRIPTION),
    (Role::Ledger, campusg_ledger::DESCRIPTION),
];

/// The services' names, which name their stores.
pub fn names() -> impl Iterator<Item = &'static str> {
    SERVICES.iter().map(|(_, service)| service.name)
}

/// The name of the service `role` runs.
pub fn name_of(role: Role) -> &'static str {
    SERVICES
        .iter()
        .find(|(r, _)| *r == role)
        .map(|(_, service)| service.name)
        .expect("every service role is listed")
}

/// Every aggregate type campusg keeps, with the service whose store holds it.
pub fn aggregates() -> impl Iterator<Item = (&'static AggregateKind, &'static str)> {
    SERVICES
        .iter()
        .flat_map(|(_, service)| service.aggregates.iter().map(|kind| (kind, service.name)))
}

/// An aggregate type and the service whose store holds it.
pub fn aggregate(aggregate_type: &str) -> Option<(&'static AggregateKind, &'static str)> {
    aggregates().find(|(kind, _)| kind.aggregate_type == aggregate_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_service_and_aggregate_type_is_named_once() {
        let mut names: Vec<&str> = names().collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), SERVICES.len());
        let mut types: Vec<&str> = aggregates().map(|(kind, _)| kind.aggregate_type).collect();
        let all = types.len();
        types.sort();
        types.dedup();
        assert_eq!(types.len(), all, "an aggregate type kept by two stores: {types:?}");
    }

    /// A service's subscriptions follow from the types it handles: each must
    /// be a type the contracts know, on a topic.
    #[test]
    fn every_handled_type_has_a_schema_and_a_topic() {
        let contracts = campusg_runtime::store::Contracts::builtin();
        for (_, service) in &SERVICES {
            for message_type in service.handles {
                assert!(
                    contracts.topics.topic_for(message_type).is_some(),
                    "{}: no topic carries `{message_type}`",
                    service.name
                );
                assert!(
                    contracts.schemas.knows(message_type),
                    "{}: no schema for `{message_type}`",
                    service.name
                );
            }
        }
    }
}
