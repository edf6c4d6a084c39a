//! How the timer service answers each command, from a topic or from HTTP.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use serde_json::{json, Value};

use campusg_domain::ids::TimerId;
use campusg_domain::messages::{
    Message, StartOrderTimer, StopOrderTimer, TimerFailed, TimerStarted, TimerStopped, ORDER_ACCEPTANCE_TIMER,
};
use campusg_domain::timer::{due_after, Timer, TimerCommand, TimerError, TimerSpec, TimerStatus};
use campusg_runtime::aggregate::{execute, load, Loaded};
use campusg_runtime::clock::Clock;
use campusg_runtime::command::CommandService;
use campusg_runtime::consumer::HandlerError;
use campusg_runtime::service::ServiceDescription;
use campusg_runtime::store::{Cause, StateQuery, UnitOfWork};

use crate::{TimerService, SERVICE_NAME};

#[async_trait]
impl CommandService for TimerService {
    const DESCRIPTION: ServiceDescription = crate::DESCRIPTION;

    fn clock(&self) -> &dyn Clock {
        self.deps.clock.as_ref()
    }

    async fn handle_command(&self, message: Message, cause: Cause) -> Result<Option<Message>, HandlerError> {
        match message {
            Message::StartOrderTimer(command) => {
                // The command's id names the timer, so a redelivery finds it
                // scheduled; a start with no message behind it could not be
                // recognised when repeated, so it is refused.
                let asked_by = cause
                    .causation_id
                    .as_deref()
                    .and_then(|id| uuid::Uuid::parse_str(id).ok());
                let Some(asked_by) = asked_by else {
                    return Err(HandlerError::Rejected(
                        "a timer is started by a start_order_timer message, whose id names it".into(),
                    ));
                };
                self.start_order_timer(command, TimerId::for_command(asked_by), cause)
                    .await?;
            }
            Message::StopOrderTimer(command) => {
                self.stop_order_timer(command, cause).await?;
            }
            // The consumer hands this service only the types it declares.
            _ => {}
        }
        Ok(None)
    }
}

impl TimerService {
    async fn start_order_timer(
        &self,
        command: StartOrderTimer,
        timer_id: TimerId,
        cause: Cause,
    ) -> Result<(), HandlerError> {
        let mut unit = UnitOfWork::new(cause);
        let due_at = match command.delay_seconds {
            None => unit.cause.at + self.acceptance_window,
            Some(seconds) => match due_after(unit.cause.at, seconds) {
                Ok(due_at) => due_at,
                Err(refused) => {
                    let failed = TimerFailed {
                        order_id: Some(command.order_id),
                        reason: refused.to_string(),
                    };
                    unit.publish(&self.deps.contracts, &Message::TimerFailed(failed))
                        .map_err(rejected)?;
                    self.deps.store.commit(unit).await?;
                    return Ok(());
                }
            },
        };
        let payload = match command.order_created_at {
            Some(created_at) => json!({"order_created_at": created_at}),
            None => json!({}),
        };
        let spec = TimerSpec {
            timer_id,
            timer_type: ORDER_ACCEPTANCE_TIMER.to_string(),
            entity_id: command.order_id.to_string(),
            order_id: Some(command.order_id),
            due_at,
            payload,
            correlation_id: unit.cause.correlation_id.clone(),
        };
        match self.schedule_in(spec, &mut unit).await? {
            Ok(_) => {}
            Err(TimerError::AlreadyScheduled(_)) => {}
            Err(other) => return Err(HandlerError::Rejected(other.to_string())),
        }
        self.deps.store.commit(unit).await?;
        Ok(())
    }

    /// Schedules `spec` in `unit`. A timer scheduled before is answered with the
    /// same `timer.started` as the first time.
    async fn schedule_in(
        &self,
        spec: TimerSpec,
        unit: &mut UnitOfWork,
    ) -> Result<Result<Timer, TimerError>, HandlerError> {
        let mut loaded = load::<Timer>(self.deps.store.as_ref(), &spec.timer_id.to_string()).await?;
        let schedule = TimerCommand::Schedule {
            spec,
            at: unit.cause.at,
        };
        match execute(&mut loaded, schedule, &()).await {
            Ok(events) => {
                unit.append(&self.deps.contracts, &mut loaded, &events, true)
                    .map_err(rejected)?;
                Ok(Ok(loaded.aggregate))
            }
            Err(TimerError::AlreadyScheduled(timer_id)) => {
                let timer = &loaded.aggregate;
                if let (Some(due_at), Some(scheduled_at)) = (timer.due_at, timer.scheduled_at) {
                    let again = TimerStarted {
                        timer_id,
                        timer_type: timer.timer_type.clone(),
                        entity_id: timer.entity_id.clone(),
                        order_id: timer.order_id,
                        due_at,
                        scheduled_at,
                        payload: timer.payload.clone(),
                    };
                    unit.publish(&self.deps.contracts, &Message::TimerStarted(again))
                        .map_err(rejected)?;
                }
                Ok(Err(TimerError::AlreadyScheduled(timer_id)))
            }
            Err(other) => Ok(Err(other)),
        }
    }

    /// Cancels every pending acceptance timer of the order and answers with one
    /// `timer.stopped` that names them.
    pub(crate) async fn stop_order_timer(
        &self,
        command: StopOrderTimer,
        cause: Cause,
    ) -> Result<Vec<TimerId>, HandlerError> {
        let mut unit = UnitOfWork::new(cause);
        let query = StateQuery {
            equals: vec![
                ("order_id".into(), command.order_id.to_string()),
                ("timer_type".into(), ORDER_ACCEPTANCE_TIMER.into()),
                ("status".into(), TimerStatus::Scheduled.as_str().into()),
            ],
            ..StateQuery::default()
        };
        let mut stopped = Vec::new();
        for state in self.deps.store.query_states(Timer::TYPE, &query).await? {
            let Some(timer_id) = state.get("timer_id").and_then(Value::as_str) else {
                continue;
            };
            let mut loaded = load::<Timer>(self.deps.store.as_ref(), timer_id).await?;
            if let Some(id) = self.cancel_in(&mut loaded, &command.reason, &mut unit).await? {
                stopped.push(id);
            }
        }
        let answer = TimerStopped {
            order_id: command.order_id,
            timer_type: ORDER_ACCEPTANCE_TIMER.to_string(),
            timer_ids: stopped.clone(),
            stopped_at: unit.cause.at,
        };
        unit.publish(&self.deps.contracts, &Message::TimerStopped(answer))
            .map_err(rejected)?;
        self.deps.store.commit(unit).await?;
        Ok(stopped)
    }

    /// Cancels one timer in `unit`, if it is still pending.
    async fn cancel_in(
        &self,
        loaded: &mut Loaded<Timer>,
        reason: &str,
        unit: &mut UnitOfWork,
    ) -> Result<Option<TimerId>, HandlerError> {
        let cancel = TimerCommand::Cancel {
            reason: reason.to_string(),
            at: unit.cause.at,
        };
        match execute(loaded, cancel, &()).await {
            Ok(events) => {
                unit.append(&self.deps.contracts, loaded, &events, true)
                    .map_err(rejected)?;
                Ok(loaded.aggregate.timer_id)
            }
            // It fired or was cancelled meanwhile: nothing left to stop.
            Err(_) => Ok(None),
        }
    }

    /// `POST /schedule`: a timer of any type.
    pub(crate) async fn schedule(
        &self,
        spec: TimerSpec,
        cause: Cause,
    ) -> Result<Result<Timer, TimerError>, HandlerError> {
        let mut unit = UnitOfWork::new(cause);
        let outcome = self.schedule_in(spec, &mut unit).await?;
        self.deps.store.commit(unit).await?;
        Ok(outcome)
    }

    /// `POST /events/{id}/cancel`. Cancelling a cancelled timer again is not an error.
    pub(crate) async fn cancel(
        &self,
        timer_id: TimerId,
        reason: String,
        cause: Cause,
    ) -> Result<Result<Timer, TimerError>, HandlerError> {
        let mut loaded = load::<Timer>(self.deps.store.as_ref(), &timer_id.to_string()).await?;
        let mut unit = UnitOfWork::new(cause);
        let command = TimerCommand::Cancel {
            reason,
            at: unit.cause.at,
        };
        match execute(&mut loaded, command, &()).await {
            Ok(events) => {
                unit.append(&self.deps.contracts, &mut loaded, &events, true)
                    .map_err(rejected)?;
                self.deps.store.commit(unit).await?;
                Ok(Ok(loaded.aggregate))
            }
            Err(TimerError::AlreadyCancelled) => Ok(Ok(loaded.aggregate)),
            Err(other) => Ok(Err(other)),
        }
    }

    /// Fires `timer_id` if it is due at `now`; whether it fired.
    pub(crate) async fn fire(&self, timer_id: &str, now: DateTime<Utc>) -> Result<bool, HandlerError> {
        let mut loaded = load::<Timer>(self.deps.store.as_ref(), timer_id).await?;
        let correlation_id = loaded.aggregate.correlation_id.clone();
        let order_id = loaded.aggregate.order_id;
        let Ok(events) = execute(&mut loaded, TimerCommand::Fire { at: now }, &()).await else {
            return Ok(false);
        };
        let mut unit = UnitOfWork::new(Cause::request(correlation_id.clone(), SERVICE_NAME, now));
        // The expiry is made in its saga's trace: nothing else of the saga runs now.
        let order = order_id.as_ref().map(ToString::to_string).unwrap_or_default();
        campusg_runtime::telemetry::saga_span(&correlation_id, "timer fired", &order)
            .in_scope(|| unit.append(&self.deps.contracts, &mut loaded, &events, true))
            .map_err(rejected)?;
        self.deps.store.commit(unit).await?;
        tracing::info!(timer_id, saga_id = %correlation_id, order_id = ?order_id, "timer fired");
        Ok(true)
    }
}

/// A message this service builds that breaks its own schema is a bug; the
/// command that caused it is dead-lettered with the reason rather than retried.
fn rejected(error: impl std::fmt::Display) -> HandlerError {
    HandlerError::Rejected(format!("the timer service could not publish its answer: {error}"))
}
