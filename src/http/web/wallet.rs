//! The driver's wallet page, `GET /wallet`: the balance, the recharge forms (posting to the
//! dashboard's `POST /wallet/recharge`) and the ledger, credits and debits newest first with
//! the balance after each, paginated. The ledger comes from the same function as
//! `GET /api/wallet/transactions`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use kilowatt_actors::store::{pool, wallets};
use rust_decimal::Decimal;
use serde::Deserialize;

use super::dashboard::inr;
use super::history::local_time;
use super::session::{Chrome, WebError, WebSession, html};
use crate::http::api::wallet::ledger_page;
use crate::http::error::ApiError;
use crate::state::AppState;

/// Ledger entries per page.
pub const PAGE_SIZE: i64 = 20;

/// Registers the wallet page.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/wallet", web::get().to(show));
}

/// The wallet page.
#[derive(Template)]
#[template(path = "web/wallet.html")]
struct WalletPage {
    chrome: Chrome,
    balance: String,
    presets: Vec<String>,
    min_recharge: String,
    max_recharge: String,
    entries: Vec<EntryRow>,
    total: i64,
    page: i64,
    pages: i64,
    previous: Option<String>,
    next: Option<String>,
}

/// One ledger entry as the table shows it.
struct EntryRow {
    id: i64,
    date: String,
    kind: String,
    description: String,
    credit: bool,
    amount: String,
    balance_after: String,
}

/// `?page=`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct WalletQuery {
    page: String,
}

/// What a ledger kind is called on the page.
fn kind_label(kind: &str) -> &'static str {
    match kind {
        "recharge" => "Recharge",
        "charging" => "Charging",
        "booking" => "Booking",
        "refund" => "Refund",
        "adjustment" => "Adjustment",
        _ => "Other",
    }
}

fn page_href(page: i64) -> String {
    if page <= 1 { "/wallet".to_owned() } else { format!("/wallet?page={page}") }
}

/// `GET /wallet`: balance, recharge and the ledger.
pub async fn show(
    session: WebSession,
    query: web::Query<WalletQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let number = match query.page.trim() {
        "" => 1,
        text => text
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=1_000_000).contains(n))
            .ok_or_else(|| WebError::not_found("There is no such page of your wallet."))?,
    };
    let mut conn = pool::connection(&state.pool).await.map_err(ApiError::from)?;
    let balance = wallets::balance(&mut conn, session.user.id).await.map_err(ApiError::from)?.unwrap_or_default();
    drop(conn);
    let ledger = ledger_page(&state, session.user.id, PAGE_SIZE, (number - 1) * PAGE_SIZE).await?;
    let pages = ((ledger.total + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
    let entries = ledger
        .items
        .into_iter()
        .map(|e| {
            let credit = e.amount >= Decimal::ZERO;
            let magnitude = inr(e.amount.abs());
            EntryRow {
                id: e.id,
                date: local_time(e.created_at),
                kind: kind_label(&e.kind).to_owned(),
                description: e.description,
                amount: if credit { format!("+₹{magnitude}") } else { format!("−₹{magnitude}") },
                credit,
                balance_after: inr(e.balance_after),
            }
        })
        .collect();
    let policy = &state.config.policy;
    let page = WalletPage {
        chrome: session.chrome("Wallet"),
        balance: inr(balance),
        presets: policy.recharge_presets.iter().map(|p| p.normalize().to_string()).collect(),
        min_recharge: policy.min_recharge.normalize().to_string(),
        max_recharge: policy.max_recharge.normalize().to_string(),
        entries,
        total: ledger.total,
        page: number,
        pages,
        previous: (number > 1).then(|| page_href((number - 1).min(pages))),
        next: (number < pages).then(|| page_href(number + 1)),
    };
    html(StatusCode::OK, &page)
}
