//! Reading and writing the test's database directly, for setup and for asserting what was
//! stored: `exec` runs a statement, `scalar` reads one value as any `FromStr` type.

use diesel::sql_types::{Nullable, Text};
use diesel::{QueryableByName, sql_query};
use diesel_async::RunQueryDsl;
use rust_decimal::Decimal;

use super::TestApp;

/// Runs one SQL statement; panics with the statement on failure.
pub async fn exec(app: &TestApp, sql: &str) {
    let mut conn = app.db.connect().await;
    sql_query(sql).execute(&mut conn).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
}

#[derive(QueryableByName)]
struct Scalar {
    #[diesel(sql_type = Nullable<Text>)]
    value: Option<String>,
}

/// The single value `sql` selects, read as `T` (`sql` is used as a scalar subquery).
pub async fn scalar<T: std::str::FromStr>(app: &TestApp, sql: &str) -> T {
    let mut conn = app.db.connect().await;
    let rows: Vec<Scalar> = sql_query(format!("SELECT ({sql})::text AS value"))
        .load(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let text = rows[0].value.clone().unwrap_or_else(|| panic!("{sql}: NULL"));
    text.parse().unwrap_or_else(|_| panic!("{sql}: cannot read {text}"))
}

pub async fn count(app: &TestApp, sql: &str) -> i64 {
    scalar(app, sql).await
}

pub async fn money(app: &TestApp, sql: &str) -> Decimal {
    scalar(app, sql).await
}
