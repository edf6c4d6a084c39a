//! `/api/notifications`: send one, read a user's (newest first, with how many
//! are unread) or an order's, and mark one read.
//!
//! Operators send; a user reads and marks only their own notifications (of an
//! order, too: each party sees what was said to them).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use cqrs_es::Aggregate;
use serde::Deserialize;
use serde_json::{json, Value};

use campusg_domain::ids::{OrderId, UserId};
use campusg_domain::limits::{MAX_NAME_CHARS, MAX_TEXT_CHARS};
use campusg_domain::messages::NotificationCreated;
use campusg_domain::notification::{Notification, NotificationCommand, NotificationError, OPERATORS_INBOX, UNREAD};
use campusg_runtime::access::{Access, Caller, Routes};
use campusg_runtime::aggregate::{execute, load};
use campusg_runtime::http::{read_model, text_within, ApiError, JsonBody, Page, Path, Query};
use campusg_runtime::store::{Cause, StateQuery, UnitOfWork};

use crate::{NotificationService, SERVICE_NAME};

/// A 403 unless `caller` may read `inbox`: their own, or any for operators.
/// The operators' inbox only operators read, whatever a token's subject is.
fn may_read(caller: &Caller, inbox: &UserId) -> Result<(), ApiError> {
    if inbox.as_str() == OPERATORS_INBOX && !caller.is_operator() {
        return Err(ApiError::forbidden("the operators' inbox is for operators"));
    }
    caller.acts_for(inbox)
}

pub fn routes() -> Routes<Arc<NotificationService>> {
    Routes::new()
        .post("/api/notifications/send", "sendNotification", Access::Operators, send)
        .get(
            "/api/notifications/user/{user_id}",
            "listUserNotifications",
            Access::Users,
            of_user,
        )
        .get(
            "/api/notifications/order/{order_id}",
            "listOrderNotifications",
            Access::Users,
            of_order,
        )
        .post(
            "/api/notifications/{notification_id}/read",
            "markNotificationRead",
            Access::Users,
            mark_read,
        )
}

#[derive(Deserialize)]
struct SendRequest {
    user_id: UserId,
    message: String,
    title: Option<String>,
    kind: Option<String>,
    order_id: Option<OrderId>,
    /// Names the notification; the same id sent twice is one notification.
    notification_id: Option<uuid::Uuid>,
}

async fn send(
    State(service): State<Arc<NotificationService>>,
    JsonBody(request): JsonBody<SendRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let now = service.deps.clock.now();
    let id = request.notification_id.unwrap_or_else(uuid::Uuid::new_v4);
    let notification = NotificationCreated {
        notification_id: id,
        user_id: request.user_id,
        order_id: request.order_id,
        // A blank kind or title means the default, as a missing one does.
        kind: request
            .kind
            .filter(|kind| !kind.trim().is_empty())
            .unwrap_or_else(|| "message".to_string()),
        title: request
            .title
            .filter(|title| !title.trim().is_empty())
            .unwrap_or_else(|| "Message".to_string()),
        message: request.message,
        created_at: now,
    };
    if is_blank(&notification.message) {
        return Err(ApiError::unprocessable("a notification needs a message"));
    }
    text_within("message", &notification.message, MAX_TEXT_CHARS)?;
    text_within("title", &notification.title, MAX_NAME_CHARS)?;
    text_within("kind", &notification.kind, MAX_NAME_CHARS)?;
    let mut unit = UnitOfWork::new(Cause::request(uuid::Uuid::new_v4().to_string(), SERVICE_NAME, now));
    let created = service.create_in(notification, &mut unit).await?;
    service.deps.store.commit(unit).await?;
    let status = if created.is_some() {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let state = read_model(
        service.deps.store.as_ref(),
        Notification::TYPE,
        &id.to_string(),
        "notification",
    )
    .await?;
    Ok((status, Json(notification_view(&state))))
}

#[derive(Deserialize)]
struct UserListParams {
    #[serde(default)]
    unread_only: bool,
}

/// A user's notifications, newest first, with how many are unread in all.
async fn of_user(
    State(service): State<Arc<NotificationService>>,
    caller: Caller,
    Path(user_id): Path<String>,
    Query(params): Query<UserListParams>,
    Query(page): Query<Page>,
) -> Result<Json<Value>, ApiError> {
    let user_id = UserId::parse(&user_id).map_err(|e| ApiError::bad_request(e.to_string()))?;
    may_read(&caller, &user_id)?;
    let mine = ("user_id".to_string(), user_id.to_string());
    let mut query = StateQuery {
        equals: vec![mine.clone()],
        order_by: Some("sort_key".into()),
        descending: true,
        ..StateQuery::default()
    };
    if params.unread_only {
        query.equals.push(("status".into(), UNREAD.into()));
    }
    let (page, page_size) = page.apply(&mut query, 20, 200)?;
    let store = service.deps.store.as_ref();
    let notifications: Vec<Value> = store
        .query_states(Notification::TYPE, &query)
        .await?
        .iter()
        .map(notification_view)
        .collect();
    let unread_query = StateQuery {
        equals: vec![mine, ("status".into(), UNREAD.into())],
        ..StateQuery::default()
    };
    let unread = store.query_states(Notification::TYPE, &unread_query).await?.len();
    Ok(Json(json!({
        "user_id": user_id,
        "notifications": notifications,
        "unread": unread,
        "page": page,
        "page_size": page_size,
    })))
}

/// Everything said about an order, oldest first: to anyone, for operators; to
/// the caller, for anyone else.
async fn of_order(
    State(service): State<Arc<NotificationService>>,
    caller: Caller,
    Path(order_id): Path<String>,
    Query(page): Query<Page>,
) -> Result<Json<Value>, ApiError> {
    let order_id = OrderId::parse(&order_id)
        .map_err(|_| ApiError::bad_request(format!("`{order_id}` is not an order id (a UUID)")))?;
    let mut query = StateQuery {
        equals: vec![("order_id".into(), order_id.to_string())],
        order_by: Some("sort_key".into()),
        ..StateQuery::default()
    };
    if !caller.is_operator() {
        may_read(&caller, &caller.user)?;
        query.equals.push(("user_id".into(), caller.user.to_string()));
    }
    let (page, page_size) = page.apply(&mut query, 50, 500)?;
    let notifications: Vec<Value> = service
        .deps
        .store
        .query_states(Notification::TYPE, &query)
        .await?
        .iter()
        .map(notification_view)
        .collect();
    Ok(Json(json!({
        "order_id": order_id,
        "notifications": notifications,
        "page": page,
        "page_size": page_size,
    })))
}

async fn mark_read(
    State(service): State<Arc<NotificationService>>,
    caller: Caller,
    Path(notification_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = uuid::Uuid::parse_str(&notification_id)
        .map_err(|_| ApiError::bad_request(format!("`{notification_id}` is not a notification id (a UUID)")))?;
    let mut loaded = load::<Notification>(service.deps.store.as_ref(), &id.to_string()).await?;
    if let Some(addressee) = &loaded.aggregate.user_id {
        may_read(&caller, addressee)?;
    }
    let now = service.deps.clock.now();
    let events = execute(&mut loaded, NotificationCommand::MarkRead { at: now }, &())
        .await
        .map_err(|error| match error {
            NotificationError::NotFound => ApiError::not_found(format!("notification {id} does not exist")),
            other => ApiError::unprocessable(other.to_string()),
        })?;
    let mut unit = UnitOfWork::new(Cause::request(uuid::Uuid::new_v4().to_string(), SERVICE_NAME, now));
    unit.append_unpublished(&mut loaded, &events);
    service.deps.store.commit(unit).await?;
    let state = serde_json::to_value(&loaded.aggregate).map_err(ApiError::internal)?;
    Ok(Json(notification_view(&state)))
}

fn notification_view(state: &Value) -> Value {
    json!({
        "notification_id": state["notification_id"],
        "user_id": state["user_id"],
        "order_id": state["order_id"],
        "kind": state["kind"],
        "title": state["title"],
        "message": state["message"],
        "created_at": state["created_at"],
        "read": state["read"],
        "read_at": state["read_at"],
    })
}

/// Whether `text` has nothing but white space, as the API document's pattern
/// (`\S`) counts it: Unicode white space, and the ASCII separators
/// U+001C..U+001F that Python's and others' `\s` include.
fn is_blank(text: &str) -> bool {
    text.chars()
        .all(|c| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
}
