//! `/users`: register, read and update users.
//!
//! A user registers and changes only themselves. Anyone signed in may see a
//! user's name and ratings; their email, phone, payment method, payout account
//! and the orders they were rated for only they and operators see (SPEC
//! section 11).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use cqrs_es::Aggregate;
use serde::Deserialize;
use serde_json::{json, Value};

use campusg_domain::ids::UserId;
use campusg_domain::messages::{CreateUser, Message, UpdateUser};
use campusg_domain::user::{User, UserError};
use campusg_runtime::access::{Access, Caller, Routes};
use campusg_runtime::http::{read_model, ApiError, JsonBody, Page, Path, Query};
use campusg_runtime::store::{Cause, StateQuery};

use crate::handler::CommandError;
use crate::{UserService, SERVICE_NAME};

pub fn routes() -> Routes<Arc<UserService>> {
    Routes::new()
        .get("/users", "listUsers", Access::Operators, list_users)
        .post("/users", "createUser", Access::Users, create_user)
        .get("/users/{user_id}", "getUser", Access::Users, get_user)
        .put("/users/{user_id}", "updateUser", Access::Users, update_user)
        .patch("/users/{user_id}", "patchUser", Access::Users, update_user)
}

/// What anyone signed in sees of a user: who they are and how they are
/// rated. The rest (email, phone, payment method, payout account, the orders
/// they were rated for) only they and operators see.
pub const PUBLIC_FIELDS: [&str; 8] = [
    "user_id",
    "name",
    "customer_rating",
    "customer_ratings",
    "runner_rating",
    "runner_ratings",
    "created_at",
    "updated_at",
];

/// A user as `caller` may see them: whole to themselves and operators, only
/// [`PUBLIC_FIELDS`] to anyone else.
fn as_seen_by(caller: &Caller, user_id: &UserId, mut user: Value) -> Value {
    if !caller.may_act_for(user_id) {
        if let Some(fields) = user.as_object_mut() {
            fields.retain(|field, _| PUBLIC_FIELDS.contains(&field.as_str()));
        }
    }
    user
}

fn parse_user_id(text: &str) -> Result<UserId, ApiError> {
    UserId::parse(text).map_err(|e| ApiError::bad_request(e.to_string()))
}

async fn read_user(service: &UserService, user_id: &UserId) -> Result<Value, ApiError> {
    read_model(service.deps.store.as_ref(), User::TYPE, user_id.as_str(), "user").await
}

impl From<CommandError> for ApiError {
    fn from(error: CommandError) -> ApiError {
        command_error(error)
    }
}

fn command_error(error: CommandError) -> ApiError {
    match error {
        CommandError::Refused(refusal @ UserError::AlreadyRated { .. }) => ApiError::conflict(refusal.to_string()),
        CommandError::Refused(UserError::AlreadyRegistered(id)) => {
            ApiError::conflict(format!("user {id} already exists"))
        }
        CommandError::Refused(UserError::NotFound(id)) => ApiError::not_found(format!("user {id} does not exist")),
        CommandError::Refused(refusal) => ApiError::unprocessable(refusal.to_string()),
        CommandError::Handler(error) => error.into(),
    }
}

fn request_cause(service: &UserService) -> Cause {
    Cause::request(uuid::Uuid::new_v4().to_string(), SERVICE_NAME, service.deps.clock.now())
}

async fn create_user(
    State(service): State<Arc<UserService>>,
    caller: Caller,
    JsonBody(details): JsonBody<CreateUser>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let user_id = details.user_id.clone();
    caller.acts_for(&user_id)?;
    service
        .run_command(Message::CreateUser(details), request_cause(&service))
        .await
        .map_err(command_error)?;
    Ok((StatusCode::CREATED, Json(read_user(&service, &user_id).await?)))
}

/// The body of an update: any of the user's details; the id comes from the path.
#[derive(Deserialize)]
struct UserChanges {
    name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    payment_method: Option<String>,
    payout_account: Option<String>,
}

async fn update_user(
    State(service): State<Arc<UserService>>,
    caller: Caller,
    Path(user_id): Path<String>,
    JsonBody(changes): JsonBody<UserChanges>,
) -> Result<Json<Value>, ApiError> {
    let user_id = parse_user_id(&user_id)?;
    caller.acts_for(&user_id)?;
    let update = UpdateUser {
        user_id: user_id.clone(),
        name: changes.name,
        email: changes.email,
        phone: changes.phone,
        payment_method: changes.payment_method,
        payout_account: changes.payout_account,
    };
    let names_something = [
        &update.name,
        &update.email,
        &update.phone,
        &update.payment_method,
        &update.payout_account,
    ]
    .iter()
    .any(|field| field.is_some());
    // An update that names nothing changes nothing: the answer is the user as they are.
    if names_something {
        service
            .run_command(Message::UpdateUser(update), request_cause(&service))
            .await
            .map_err(command_error)?;
    }
    Ok(Json(read_user(&service, &user_id).await?))
}

async fn get_user(
    State(service): State<Arc<UserService>>,
    caller: Caller,
    Path(user_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let user_id = parse_user_id(&user_id)?;
    let user = read_user(&service, &user_id).await?;
    Ok(Json(as_seen_by(&caller, &user_id, user)))
}

async fn list_users(
    State(service): State<Arc<UserService>>,
    Query(page): Query<Page>,
) -> Result<Json<Value>, ApiError> {
    let mut query = StateQuery::default();
    let (page, page_size) = page.apply(&mut query, 20, 200)?;
    let users = service.deps.store.query_states(User::TYPE, &query).await?;
    Ok(Json(json!({"users": users, "page": page, "page_size": page_size})))
}
