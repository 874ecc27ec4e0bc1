//! The wallet end to end over real HTTP with the sandbox provider: balance and limits,
//! recharge through the sandbox pay page (pay, decline, double submit), amount validation that
//! creates nothing, the ledger newest first with paging, privacy of payments, expiry of
//! abandoned payments, and concurrent credits and debits that never lose an update.

mod common;

use chrono::Duration as ChronoDuration;
use common::sql::{count, money, scalar};
use common::{TestApp, User, error_code, spawn_app};
use diesel_async::AsyncConnection;
use futures_util::future::join_all;
use kilowatt_actors::store::wallets::{self, Entry};
use rust_decimal::Decimal;
use serde_json::{Value, json};

fn dec(value: &str) -> Decimal {
    value.parse().expect("decimal")
}

/// The path part of an absolute URL on our server.
fn path_of(url: &str) -> String {
    let start = url.find("/payments/").unwrap_or_else(|| panic!("not a payment page URL: {url}"));
    url[start..].to_owned()
}

/// A client that shows redirects instead of following them.
fn no_redirects() -> awc::Client {
    awc::Client::builder().disable_redirects().timeout(std::time::Duration::from_secs(30)).finish()
}

/// Begins a recharge; answers the payment record and redirect URL.
async fn recharge(app: &TestApp, user: &User, amount: Value) -> Value {
    let (status, body) =
        app.call("POST", "/api/wallet/recharge", Some(&user.token), Some(&json!({ "amount": amount }))).await;
    assert_eq!(status, 201, "{body}");
    body["data"].clone()
}

/// Submits the sandbox form; answers the status and Location.
async fn submit(app: &TestApp, payment: &Value, outcome: &str) -> (u16, String) {
    let path = format!("{}/complete", path_of(payment["redirectUrl"].as_str().expect("redirectUrl")));
    let response = no_redirects().post(app.url(&path)).send_form(&[("outcome", outcome)]).await.expect("form sent");
    let location = response.headers().get("location").and_then(|l| l.to_str().ok()).unwrap_or("").to_owned();
    (response.status().as_u16(), location)
}

async fn balance(app: &TestApp, user: &User) -> Value {
    let (status, body) = app.call("GET", "/api/wallet", Some(&user.token), None).await;
    assert_eq!(status, 200, "{body}");
    body["data"]["balance"].clone()
}

async fn ledger(app: &TestApp, user: &User, query: &str) -> Value {
    let (status, body) = app.call("GET", &format!("/api/wallet/transactions{query}"), Some(&user.token), None).await;
    assert_eq!(status, 200, "{body}");
    body["data"].clone()
}

async fn payment(app: &TestApp, user: &User, id: i64) -> Value {
    let (status, body) = app.call("GET", &format!("/api/payments/{id}"), Some(&user.token), None).await;
    assert_eq!(status, 200, "{body}");
    body["data"].clone()
}

/// Ledger entries (in ID order, which is the order they took the wallet's row lock) whose
/// balanceAfter is not the previous one plus their amount: 0 when no update was lost.
async fn broken_links(app: &TestApp, user_id: i64) -> i64 {
    count(
        app,
        &format!(
            "SELECT count(*) FROM (SELECT balance_after - amount \
               - coalesce(lag(balance_after) OVER (ORDER BY id), 0) AS gap \
             FROM wallet_entries WHERE user_id = {user_id}) links WHERE gap <> 0"
        ),
    )
    .await
}

#[actix_rt::test]
async fn a_driver_recharges_1000_through_the_sandbox_and_sees_it_in_balance_and_ledger() {
    let app = spawn_app().await;
    let asha = app.driver("asha").await;

    let (status, body) = app.call("GET", "/api/wallet", Some(&asha.token), None).await;
    assert_eq!(status, 200, "{body}");
    let wallet = &body["data"];
    assert_eq!(wallet["balance"], "0.00");
    assert_eq!(wallet["currency"], "INR");
    assert_eq!(wallet["minRecharge"], "500");
    assert_eq!(wallet["maxRecharge"], "100000");
    assert_eq!(wallet["rechargePresets"], json!(["500", "1000", "2000", "5000"]));

    let started = recharge(&app, &asha, json!(1000)).await;
    assert_eq!(started["state"], "pending");
    assert_eq!(started["provider"], "sandbox");
    assert_eq!(started["amount"], "1000.00");
    let mtid = started["merchantTransactionId"].as_str().expect("merchantTransactionId");
    assert!(mtid.len() <= 38 && mtid.bytes().all(|b| b.is_ascii_alphanumeric()), "{mtid}");
    let redirect = started["redirectUrl"].as_str().expect("redirectUrl");
    assert!(redirect.ends_with(&format!("/payments/sandbox/{mtid}")), "{redirect}");

    let (status, html) = app.get_text(&path_of(redirect)).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("1000.00"), "{html}");
    assert!(html.contains(&format!("action=\"/payments/sandbox/{mtid}/complete\"")), "{html}");
    assert!(html.contains("value=\"success\"") && html.contains("value=\"failure\""), "{html}");
    // Nothing is credited by looking at the page.
    assert_eq!(balance(&app, &asha).await, "0.00");

    let (status, location) = submit(&app, &started, "success").await;
    assert_eq!(status, 303);
    assert_eq!(location, format!("/payments/{mtid}/result"));
    let (status, html) = app.get_text(&location).await;
    assert_eq!(status, 200);
    assert!(html.contains("Payment successful") && html.contains("succeeded"), "{html}");
    assert!(html.contains("id=\"balance\">₹1000.00"), "{html}");

    assert_eq!(balance(&app, &asha).await, "1000.00");
    let page = ledger(&app, &asha, "").await;
    assert_eq!(page["total"], 1);
    let entry = &page["items"][0];
    assert_eq!(entry["amount"], "1000.00");
    assert_eq!(entry["kind"], "recharge");
    assert_eq!(entry["description"], "Recharge");
    assert_eq!(entry["referenceKind"], "payment");
    assert_eq!(entry["referenceId"], started["id"]);
    assert_eq!(entry["balanceAfter"], "1000.00");
    assert!(entry["createdAt"].as_str().is_some());

    let shown = payment(&app, &asha, started["id"].as_i64().expect("id")).await;
    assert_eq!(shown["state"], "succeeded");
    assert!(shown["completedAt"].as_str().is_some(), "{shown}");
    // A settled payment's page shows the result instead of the buttons.
    let response = no_redirects().get(app.url(&path_of(redirect))).send().await.expect("sent");
    assert_eq!(response.status().as_u16(), 303);
}

#[actix_rt::test]
async fn a_declined_sandbox_payment_fails_and_credits_nothing() {
    let app = spawn_app().await;
    let asha = app.driver("asha").await;
    let started = recharge(&app, &asha, json!("2000")).await;
    let (status, location) = submit(&app, &started, "failure").await;
    assert_eq!(status, 303);
    let (_, html) = app.get_text(&location).await;
    assert!(html.contains("Payment failed"), "{html}");
    assert!(!html.contains("id=\"balance\""), "{html}");
    let shown = payment(&app, &asha, started["id"].as_i64().expect("id")).await;
    assert_eq!(shown["state"], "failed");
    assert!(shown["failureReason"].as_str().is_some(), "{shown}");
    assert_eq!(balance(&app, &asha).await, "0.00");
    assert_eq!(ledger(&app, &asha, "").await["total"], 0);
    // Paying after declining changes nothing.
    assert_eq!(submit(&app, &started, "success").await.0, 303);
    assert_eq!(balance(&app, &asha).await, "0.00");
    assert_eq!(payment(&app, &asha, started["id"].as_i64().expect("id")).await["state"], "failed");
}

#[actix_rt::test]
async fn a_double_submitted_sandbox_form_credits_once() {
    let app = spawn_app().await;
    let asha = app.driver("asha").await;
    let started = recharge(&app, &asha, json!(1000)).await;
    // Five clicks at once, then more one by one, then a decline: one credit.
    let clicks = join_all((0..5).map(|_| submit(&app, &started, "success"))).await;
    assert!(clicks.iter().all(|(status, _)| *status == 303), "{clicks:?}");
    submit(&app, &started, "success").await;
    submit(&app, &started, "failure").await;
    assert_eq!(balance(&app, &asha).await, "1000.00");
    assert_eq!(ledger(&app, &asha, "").await["total"], 1);
    assert_eq!(payment(&app, &asha, started["id"].as_i64().expect("id")).await["state"], "succeeded");
    let form_error = no_redirects()
        .post(app.url(&format!("{}/complete", path_of(started["redirectUrl"].as_str().expect("url")))))
        .send_form(&[("outcome", "maybe")])
        .await
        .expect("sent");
    assert_eq!(form_error.status().as_u16(), 400);
}

#[actix_rt::test]
async fn out_of_bounds_or_too_precise_amounts_are_refused_and_create_no_payment() {
    let app = spawn_app().await;
    let asha = app.driver("asha").await;
    for amount in [
        json!(499.99),
        json!("499.99"),
        json!(100000.01),
        json!("250000"),
        json!("1000.005"),
        json!(1000.125),
        json!(0),
        json!(-1000),
        json!("abc"),
        json!(null),
        json!(true),
    ] {
        let (status, body) =
            app.call("POST", "/api/wallet/recharge", Some(&asha.token), Some(&json!({ "amount": amount }))).await;
        assert_eq!((status, error_code(&body)), (422, "validation_failed"), "{amount}: {body}");
    }
    for body in [json!({}), json!({ "amount": 1000, "currency": "USD" })] {
        let (status, answer) = app.call("POST", "/api/wallet/recharge", Some(&asha.token), Some(&body)).await;
        assert_eq!(status, 422, "{body}: {answer}");
    }
    let (status, body) = app.call("POST", "/api/wallet/recharge", None, Some(&json!({ "amount": 1000 }))).await;
    assert_eq!((status, error_code(&body)), (401, "unauthorized"));
    assert_eq!(count(&app, "SELECT count(*) FROM payments").await, 0);

    // The bounds themselves, custom amounts and paise are fine.
    for (amount, stored) in [
        (json!(500), "500.00"),
        (json!("100000"), "100000.00"),
        (json!("777.50"), "777.50"),
        (json!(1234.5), "1234.50"),
        (json!("1000.000"), "1000.00"),
    ] {
        let started = recharge(&app, &asha, amount.clone()).await;
        assert_eq!(started["amount"], stored, "{amount}");
    }
    assert_eq!(count(&app, "SELECT count(*) FROM payments WHERE state = 'pending'").await, 5);
    assert_eq!(balance(&app, &asha).await, "0.00");
}

#[actix_rt::test]
async fn the_ledger_is_newest_first_and_paged() {
    let app = spawn_app().await;
    let asha = app.driver("asha").await;
    for amount in [500, 750, 1000] {
        let started = recharge(&app, &asha, json!(amount)).await;
        submit(&app, &started, "success").await;
    }
    assert_eq!(balance(&app, &asha).await, "2250.00");
    let first = ledger(&app, &asha, "?limit=2").await;
    assert_eq!(first["total"], 3);
    assert_eq!(first["limit"], 2);
    let amounts: Vec<&Value> = first["items"].as_array().expect("items").iter().map(|e| &e["amount"]).collect();
    assert_eq!(amounts, [&json!("1000.00"), &json!("750.00")]);
    assert_eq!(first["items"][0]["balanceAfter"], "2250.00");
    assert_eq!(first["items"][1]["balanceAfter"], "1250.00");
    let rest = ledger(&app, &asha, "?limit=2&offset=2").await;
    assert_eq!(rest["items"].as_array().expect("items").len(), 1);
    assert_eq!(rest["items"][0]["amount"], "500.00");
    assert_eq!(rest["items"][0]["balanceAfter"], "500.00");
    assert_eq!(ledger(&app, &asha, "?offset=10").await["items"], json!([]));
    for query in ["?limit=0", "?limit=101", "?offset=-1", "?limit=abc", "?page=2"] {
        let (status, body) =
            app.call("GET", &format!("/api/wallet/transactions{query}"), Some(&asha.token), None).await;
        assert_eq!((status, error_code(&body)), (422, "validation_failed"), "{query}");
    }
    // Someone else's ledger is their own.
    let ravi = app.driver("ravi").await;
    assert_eq!(ledger(&app, &ravi, "").await["total"], 0);
    assert_eq!(balance(&app, &ravi).await, "0.00");
    let (status, _) = app.call("GET", "/api/wallet/transactions", None, None).await;
    assert_eq!(status, 401);
}

#[actix_rt::test]
async fn another_driver_cannot_see_my_payment_or_its_pages_by_id() {
    let app = spawn_app().await;
    let asha = app.driver("asha").await;
    let ravi = app.driver("ravi").await;
    let started = recharge(&app, &asha, json!(1000)).await;
    let id = started["id"].as_i64().expect("id");
    let (status, body) = app.call("GET", &format!("/api/payments/{id}"), Some(&ravi.token), None).await;
    assert_eq!((status, error_code(&body)), (404, "not_found"));
    for path in ["/api/payments/999999", "/api/payments/abc"] {
        let (status, _) = app.call("GET", path, Some(&asha.token), None).await;
        assert_eq!(status, 404, "{path}");
    }
    let (status, _) = app.call("GET", &format!("/api/payments/{id}"), None, None).await;
    assert_eq!(status, 401);
    // Pages are addressed by the unguessable reference, never by the sequential ID.
    for path in [
        format!("/payments/sandbox/{id}"),
        format!("/payments/{id}/result"),
        "/payments/sandbox/KW1Tnope".to_owned(),
        "/payments/sandbox/%3Cscript%3E".to_owned(),
    ] {
        let (status, html) = app.get_text(&path).await;
        assert_eq!(status, 404, "{path}");
        assert!(html.contains("Payment not found") && !html.contains("<script>"), "{html}");
    }
    let (status, _) =
        submit(&app, &json!({ "redirectUrl": format!("http://x/payments/sandbox/{id}") }), "success").await;
    assert_eq!(status, 404);
    assert_eq!(payment(&app, &asha, id).await["state"], "pending");
}

#[actix_rt::test]
async fn abandoned_payments_expire_after_a_day_and_credit_nothing() {
    let app = spawn_app().await;
    let asha = app.driver("asha").await;
    let abandoned = recharge(&app, &asha, json!(1000)).await;
    app.clock.advance(ChronoDuration::hours(23));
    let state = &app.server.as_ref().expect("running").state;
    let report = kilowatt::payments::reconcile_pending(state).await.expect("reconciles");
    assert_eq!(report.expired, 0);
    let recent = recharge(&app, &asha, json!(500)).await;
    app.clock.advance(ChronoDuration::hours(2));
    let report = kilowatt::payments::reconcile_pending(state).await.expect("reconciles");
    assert_eq!(report.expired, 1, "{report:?}");
    let shown = payment(&app, &asha, abandoned["id"].as_i64().expect("id")).await;
    assert_eq!(shown["state"], "expired");
    assert_eq!(payment(&app, &asha, recent["id"].as_i64().expect("id")).await["state"], "pending");
    // Too late to pay now.
    submit(&app, &abandoned, "success").await;
    assert_eq!(balance(&app, &asha).await, "0.00");
    let (_, html) =
        app.get_text(&format!("/payments/{}/result", abandoned["merchantTransactionId"].as_str().expect("mtid"))).await;
    assert!(html.contains("Payment expired"), "{html}");
}

#[actix_rt::test]
async fn concurrent_completions_never_lose_an_update() {
    let app = spawn_app().await;
    let asha = app.driver("asha").await;
    let mut started = Vec::new();
    for i in 0..20 {
        started.push(recharge(&app, &asha, json!(format!("{}.25", 500 + i))).await);
    }
    // Every payment completed twice, all at once.
    let submits = started.iter().chain(started.iter()).map(|p| submit(&app, p, "success"));
    let answers = join_all(submits).await;
    assert!(answers.iter().all(|(status, _)| *status == 303), "{answers:?}");
    let expected: Decimal = (0..20).map(|i| Decimal::from(500 + i) + dec("0.25")).sum();
    assert_eq!(balance(&app, &asha).await, json!(expected.to_string()));
    assert_eq!(ledger(&app, &asha, "").await["total"], 20);
    let sum = money(&app, &format!("SELECT sum(amount) FROM wallet_entries WHERE user_id = {}", asha.id)).await;
    assert_eq!(sum, expected);
    // The newest entry's balanceAfter is the balance: no entry saw a stale total.
    let top: Decimal = scalar(
        &app,
        &format!("SELECT balance_after FROM wallet_entries WHERE user_id = {} ORDER BY id DESC LIMIT 1", asha.id),
    )
    .await;
    assert_eq!(top, expected);
    assert_eq!(broken_links(&app, asha.id).await, 0);
    let distinct: i64 =
        count(&app, &format!("SELECT count(DISTINCT balance_after) FROM wallet_entries WHERE user_id = {}", asha.id))
            .await;
    assert_eq!(distinct, 20);
}

#[actix_rt::test]
async fn concurrent_credits_and_debits_on_separate_connections_keep_balance_equal_to_the_ledger() {
    let app = spawn_app().await;
    let asha = app.driver("asha").await;
    let user_id = asha.id;
    let tasks = (0..20i64).map(|i| {
        let db = &app.db;
        async move {
            let mut conn = db.connect().await;
            let amount = if i % 4 == 3 { Decimal::from(-100) } else { Decimal::from(250) + Decimal::new(i, 2) };
            let entry = Entry {
                user_id,
                amount,
                kind: "adjustment",
                description: "Test adjustment",
                reference_kind: "manual",
                reference_id: 10_000 + i,
            };
            conn.transaction::<_, kilowatt_actors::store::StoreError, _>(async |conn| {
                wallets::apply(conn, &entry).await
            })
            .await
            .expect("applied")
        }
    });
    let afters = join_all(tasks).await;
    let balance_now = money(&app, &format!("SELECT balance FROM wallets WHERE user_id = {user_id}")).await;
    let sum = money(&app, &format!("SELECT sum(amount) FROM wallet_entries WHERE user_id = {user_id}")).await;
    assert_eq!(balance_now, sum);
    let expected: Decimal = (0..20i64)
        .map(|i| if i % 4 == 3 { Decimal::from(-100) } else { Decimal::from(250) + Decimal::new(i, 2) })
        .sum();
    assert_eq!(balance_now, expected);
    assert_eq!(afters.len(), 20);
    assert_eq!(broken_links(&app, user_id).await, 0);
    // Replaying a reference is refused by the ledger's unique key, and the transaction with it.
    let mut conn = app.db.connect().await;
    let replay = Entry {
        user_id,
        amount: Decimal::from(250),
        kind: "adjustment",
        description: "Test adjustment",
        reference_kind: "manual",
        reference_id: 10_000,
    };
    let replayed = conn
        .transaction::<_, kilowatt_actors::store::StoreError, _>(async |conn| wallets::apply(conn, &replay).await)
        .await;
    assert!(replayed.is_err());
    assert_eq!(money(&app, &format!("SELECT balance FROM wallets WHERE user_id = {user_id}")).await, expected);
    assert_eq!(balance(&app, &asha).await, json!(expected.to_string()));
}
