//! Raw SQL that is prepared once per connection and reused.
//!
//! diesel never caches a `sql_query`: its text could be anything, so every run prepares it
//! again. With diesel-async that is two round trips to PostgreSQL (prepare, then execute) and a
//! fresh parse and plan each time; for the start's check, about 0.6 ms of planning on a warm
//! connection and 2.5 ms on a new one. A statement whose text never changes is safe to keep:
//! wrapped in [`Prepared`] it is prepared at its first run on a connection and then executed in
//! one round trip without a parse, and PostgreSQL may reuse its plan.
//!
//! Only for SQL that is a constant: the connection keeps one statement per distinct text, so
//! text built at run time (a varying `IN` list, a formatted identifier) must stay uncached.
//!
//! A batch's statements need one more step. Their array parameters (`unnest($1)`, `= ANY($1)`)
//! hold one element per row of the batch, so their sizes vary from run to run (a fixed list of
//! statuses is not a batch). After five runs PostgreSQL may switch a kept statement to a
//! generic plan, made without the arrays' sizes and kept until its tables are analyzed again.
//! The meter batch's generic plans, made while `charging_sessions` was new, scanned the whole
//! table at every batch once it had grown: a benchmark run fell from 22,000 to 12,000 meter
//! values a second, with CALLs timing out. So a kept batch statement runs either on a
//! connection whose one generic plan is made with sequential scans, hash joins and merge joins
//! ruled out, so it probes indexes whatever the tables held when it was made (the meter
//! writer's, from [`super::pool::build_batch_pool`]: planned once, not at every batch), or in a
//! transaction that first calls [`plan_each_run`] (the status batch, on connections whose
//! lookups keep their plans: planned for each batch and the tables as they are). Either way it
//! keeps its parse and its single round trip. A batch statement outside both is not kept (a
//! transaction would cost more round trips than the prepare saves).

use diesel::QueryResult;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel_async::{AsyncPgConnection, SimpleAsyncConnection};

/// A raw SQL statement with a constant text, kept prepared on each connection.
#[derive(Debug, Clone)]
pub struct Prepared<Q>(Q);

/// `.prepared()` on a `sql_query(…)` with its binds: see the module's documentation.
pub trait KeepPrepared: Sized {
    /// Keeps this statement prepared on the connection it runs on.
    fn prepared(self) -> Prepared<Self> {
        Prepared(self)
    }
}

impl<Q: QueryFragment<Pg>> KeepPrepared for Q {}

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for Prepared<Q> {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.0.walk_ast(pass)
    }

    /// The text is a constant, so one statement per connection serves every run.
    fn is_safe_to_cache_prepared(&self, _backend: &Pg) -> QueryResult<bool> {
        Ok(true)
    }
}

/// No static ID: the connection's cache keys the statement by its SQL and bind types.
impl<Q> QueryId for Prepared<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: Query> Query for Prepared<Q> {
    type SqlType = Q::SqlType;
}

/// Makes the rest of the current transaction plan every statement for its own parameters: for
/// kept batch statements (see the module's documentation). One round trip, no result.
pub async fn plan_each_run(conn: &mut AsyncPgConnection) -> QueryResult<()> {
    conn.batch_execute("SET LOCAL plan_cache_mode = force_custom_plan").await
}
