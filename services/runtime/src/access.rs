//! Who is calling, and whom each route admits (SPEC section 11).
//!
//! The identity layer (in the `campusg` binary, which knows the keys) checks a
//! request's bearer token and leaves an [`Authentication`] in the request's
//! extensions. Each route is declared with its [`Access`] through [`Routes`],
//! which puts a check in front of the handler: no token or a bad one is a 401,
//! a role the route does not admit a 403, before the handler reads anything.
//! What only the data can tell (is this the caller's own order?) the handler
//! checks with [`Caller::acts_for`] and its kin. [`Routes`] also keeps the table
//! of every route's rule, from which the OpenAPI document says who may call what.
//! A mutating route also answers a retry under its `Idempotency-Key` once
//! the rule has admitted the caller ([`crate::idempotency`]).

use axum::extract::{FromRequestParts, Request};
use axum::handler::Handler;
use axum::http::request::Parts;
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter};
use axum::Router;
use serde::{Deserialize, Serialize};

use campusg_domain::ids::UserId;

use crate::http::ApiError;

/// What a caller is to the system, from their token's `role` claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Customer,
    Runner,
    Operator,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Customer, Role::Runner, Role::Operator];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Runner => "runner",
            Role::Operator => "operator",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == text)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The user a request acts as: the subject of its token, in its role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub user: UserId,
    pub role: Role,
}

impl Caller {
    pub fn is_operator(&self) -> bool {
        self.role == Role::Operator
    }

    /// Whether the caller may act for `user`: it is them, or an operator.
    pub fn may_act_for(&self, user: &UserId) -> bool {
        self.is_operator() || &self.user == user
    }

    /// A 403 unless the caller may act for `user`, as a body or path that names
    /// someone else than the token does.
    pub fn acts_for(&self, user: &UserId) -> Result<(), ApiError> {
        if self.may_act_for(user) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "the token is {}'s; it cannot act for {user}",
                self.user
            )))
        }
    }

    /// A 403 unless the caller is one of `parties` (the customer and runner of
    /// an order, say) or an operator; `what` names the thing, for the message.
    pub fn is_party_to<'a>(
        &self,
        parties: impl IntoIterator<Item = Option<&'a UserId>>,
        what: &str,
    ) -> Result<(), ApiError> {
        if self.is_operator() || parties.into_iter().flatten().any(|party| party == &self.user) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!("{} is not a party to {what}", self.user)))
        }
    }
}

/// What the identity layer made of a request's credentials.
#[derive(Clone, Debug)]
pub enum Authentication {
    Caller(Caller),
    /// A token was given and refused; the reason is for the 401's message.
    Refused(String),
}

/// Who may call a route. Operators may call every route but the public ones,
/// which everyone may call, token or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// No token needed: health and the API's description.
    Public,
    /// Operators only: the services' own routes, money moved by hand, traces.
    Operators,
    /// Customers, for themselves.
    Customers,
    /// Runners, for themselves.
    Runners,
    /// Any signed-in user; the handler checks that they are a party.
    Users,
}

impl Access {
    /// The roles this rule admits; none for a public route, which needs no token.
    pub fn roles(self) -> &'static [Role] {
        match self {
            Access::Public => &[],
            Access::Operators => &[Role::Operator],
            Access::Customers => &[Role::Customer, Role::Operator],
            Access::Runners => &[Role::Runner, Role::Operator],
            Access::Users => &Role::ALL,
        }
    }

    pub fn admits(self, role: Role) -> bool {
        self.roles().contains(&role)
    }
}

/// The 401 or 403 a request gets from `access` before its handler runs, if any.
pub fn refusal(access: Access, authentication: Option<&Authentication>) -> Option<ApiError> {
    if access == Access::Public {
        return None;
    }
    match authentication {
        Some(Authentication::Caller(caller)) if access.admits(caller.role) => None,
        Some(Authentication::Caller(caller)) => Some(ApiError::forbidden(format!(
            "a {} may not call this route; it admits {}",
            caller.role,
            access.roles().iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")
        ))),
        Some(Authentication::Refused(reason)) => Some(ApiError::unauthorized(reason.clone())),
        None => Some(ApiError::unauthorized(
            "this route needs `Authorization: Bearer <token>` (`campusg token` mints one)",
        )),
    }
}

async fn admit(access: Access, request: Request, next: Next) -> Response {
    match refusal(access, request.extensions().get::<Authentication>()) {
        None => next.run(request).await,
        Some(error) => error.into_response(),
    }
}

/// The caller of a route that admitted them; a 401 on a route declared without
/// a rule that admits anyone (a mistake the route table test catches).
impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Caller, ApiError> {
        match parts.extensions.get::<Authentication>() {
            Some(Authentication::Caller(caller)) => Ok(caller.clone()),
            _ => Err(ApiError::unauthorized("this route needs a signed-in caller")),
        }
    }
}

/// One route's rule: its method, its path (as the router spells it), the
/// name of its operation in the OpenAPI document, and who may call it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteRule {
    pub method: Method,
    pub path: &'static str,
    pub operation_id: &'static str,
    pub access: Access,
}

/// A router whose every route is declared with its [`Access`], and the table
/// of those declarations.
pub struct Routes<S = ()> {
    router: Router<S>,
    table: Vec<RouteRule>,
}

impl<S: Clone + Send + Sync + 'static> Default for Routes<S> {
    fn default() -> Self {
        Routes::new()
    }
}

impl<S: Clone + Send + Sync + 'static> Routes<S> {
    pub fn new() -> Routes<S> {
        Routes {
            router: Router::new(),
            table: Vec::new(),
        }
    }

    pub fn get<H: Handler<T, S>, T: 'static>(
        self,
        path: &'static str,
        operation_id: &'static str,
        access: Access,
        handler: H,
    ) -> Self {
        self.on(Method::GET, MethodFilter::GET, (path, operation_id), access, handler)
    }

    pub fn post<H: Handler<T, S>, T: 'static>(
        self,
        path: &'static str,
        operation_id: &'static str,
        access: Access,
        handler: H,
    ) -> Self {
        self.on(Method::POST, MethodFilter::POST, (path, operation_id), access, handler)
    }

    pub fn put<H: Handler<T, S>, T: 'static>(
        self,
        path: &'static str,
        operation_id: &'static str,
        access: Access,
        handler: H,
    ) -> Self {
        self.on(Method::PUT, MethodFilter::PUT, (path, operation_id), access, handler)
    }

    pub fn patch<H: Handler<T, S>, T: 'static>(
        self,
        path: &'static str,
        operation_id: &'static str,
        access: Access,
        handler: H,
    ) -> Self {
        self.on(
            Method::PATCH,
            MethodFilter::PATCH,
            (path, operation_id),
            access,
            handler,
        )
    }

    fn on<H: Handler<T, S>, T: 'static>(
        mut self,
        method: Method,
        filter: MethodFilter,
        (path, operation_id): (&'static str, &'static str),
        access: Access,
        handler: H,
    ) -> Self {
        let mut route = on(filter, handler);
        if matches!(method, Method::POST | Method::PUT | Method::PATCH) {
            // Inside the rule: a refused request claims no key.
            route = route.route_layer(axum::middleware::from_fn(crate::idempotency::replay_or_run));
        }
        let checked = route.route_layer(axum::middleware::from_fn(move |request, next| {
            admit(access, request, next)
        }));
        // Routes on one path with different methods merge into one.
        self.router = self.router.route(path, checked);
        self.table.push(RouteRule {
            method,
            path,
            operation_id,
            access,
        });
        self
    }

    /// Every route's rule, in the order they were declared.
    pub fn table(&self) -> &[RouteRule] {
        &self.table
    }

    /// The routes, serving `state`.
    pub fn with_state<S2>(self, state: S) -> Router<S2> {
        self.router.with_state(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn caller(user: &str, role: Role) -> Authentication {
        Authentication::Caller(Caller {
            user: UserId::parse(user).unwrap(),
            role,
        })
    }

    #[rstest]
    #[case::public_without_a_token(Access::Public, None, None)]
    #[case::no_token(Access::Users, None, Some(401))]
    #[case::a_refused_token(Access::Operators, Some(Authentication::Refused("expired".into())), Some(401))]
    #[case::a_customer_on_an_operator_route(Access::Operators, Some(caller("c1", Role::Customer)), Some(403))]
    #[case::a_runner_on_a_customer_route(Access::Customers, Some(caller("r1", Role::Runner)), Some(403))]
    #[case::a_customer_on_a_runner_route(Access::Runners, Some(caller("c1", Role::Customer)), Some(403))]
    #[case::a_customer_on_a_customer_route(Access::Customers, Some(caller("c1", Role::Customer)), None)]
    #[case::an_operator_anywhere(Access::Runners, Some(caller("ops", Role::Operator)), None)]
    fn a_route_admits_only_the_roles_it_declares(
        #[case] access: Access,
        #[case] authentication: Option<Authentication>,
        #[case] expected: Option<u16>,
    ) {
        let refused = refusal(access, authentication.as_ref()).map(|error| error.status.as_u16());
        assert_eq!(refused, expected);
    }

    #[test]
    fn only_the_user_or_an_operator_acts_for_a_user() {
        let alice = UserId::parse("alice").unwrap();
        let customer = Caller {
            user: alice.clone(),
            role: Role::Customer,
        };
        let mallory = Caller {
            user: UserId::parse("mallory").unwrap(),
            role: Role::Runner,
        };
        let operator = Caller {
            user: UserId::parse("ops").unwrap(),
            role: Role::Operator,
        };
        assert!(customer.acts_for(&alice).is_ok());
        assert_eq!(mallory.acts_for(&alice).unwrap_err().status.as_u16(), 403);
        assert!(operator.acts_for(&alice).is_ok());
        assert!(mallory.is_party_to([Some(&alice), None], "order 1").is_err());
        assert!(customer.is_party_to([Some(&alice), None], "order 1").is_ok());
    }
}
