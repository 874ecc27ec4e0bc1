//! PhonePe payments end to end against a fake PhonePe gateway on loopback that verifies every
//! checksum: the pay request, signed callbacks that credit exactly once (replayed, racing a
//! status check), forged, mismatched and unknown callbacks that change nothing, the status API
//! on return and in the reconciliation sweep (success, failure, garbage), refusals by the
//! gateway, and expiry.

mod common;

use chrono::Duration as ChronoDuration;
use common::phonepe::{FakePhonePe, Reply, Signature};
use common::sql::{count, scalar};
use common::{TestApp, User, error_code, spawn_app_with};
use serde_json::{Value, json};

async fn spawn_with_fake() -> (TestApp, FakePhonePe) {
    let fake = FakePhonePe::start().await;
    let settings = fake.settings();
    let vars: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    (spawn_app_with(&vars).await, fake)
}

fn callback_url(app: &TestApp) -> String {
    app.url("/api/payments/phonepe/callback")
}

async fn recharge(app: &TestApp, user: &User, amount: Value) -> Value {
    let (status, body) =
        app.call("POST", "/api/wallet/recharge", Some(&user.token), Some(&json!({ "amount": amount }))).await;
    assert_eq!(status, 201, "{body}");
    body["data"].clone()
}

fn mtid(payment: &Value) -> String {
    payment["merchantTransactionId"].as_str().expect("merchantTransactionId").to_owned()
}

async fn balance(app: &TestApp, user: &User) -> String {
    let (status, body) = app.call("GET", "/api/wallet", Some(&user.token), None).await;
    assert_eq!(status, 200, "{body}");
    body["data"]["balance"].as_str().expect("balance").to_owned()
}

async fn entries(app: &TestApp, user: &User) -> i64 {
    count(app, &format!("SELECT count(*) FROM wallet_entries WHERE user_id = {}", user.id)).await
}

async fn stored_state(app: &TestApp, payment: &Value) -> String {
    scalar(app, &format!("SELECT state FROM payments WHERE id = {}", payment["id"])).await
}

async fn reconcile(app: &TestApp) -> kilowatt::payments::Reconciled {
    let state = &app.server.as_ref().expect("running").state;
    kilowatt::payments::reconcile_pending(state).await.expect("reconciles")
}

#[actix_rt::test]
async fn a_recharge_sends_a_correctly_signed_pay_request_and_redirects_to_phonepe() {
    let (app, fake) = spawn_with_fake().await;
    let asha = app.driver("asha").await;
    let started = recharge(&app, &asha, json!("1500.50")).await;
    assert_eq!(started["provider"], "phonepe");
    assert_eq!(started["state"], "pending");
    let mtid = mtid(&started);
    assert_eq!(started["redirectUrl"], format!("{}/pay-page/{mtid}", fake.url));

    assert!(fake.checksum_failures().is_empty(), "{:?}", fake.checksum_failures());
    let requests = fake.pay_requests();
    assert_eq!(requests.len(), 1);
    let pay = &requests[0];
    assert_eq!(pay["merchantId"], fake.merchant_id);
    assert_eq!(pay["merchantTransactionId"], mtid);
    assert_eq!(pay["amount"], 150_050);
    assert_eq!(pay["merchantUserId"], format!("KWU{}", asha.id));
    assert_eq!(pay["redirectMode"], "REDIRECT");
    assert_eq!(pay["paymentInstrument"]["type"], "PAY_PAGE");
    assert!(pay["redirectUrl"].as_str().expect("redirectUrl").ends_with(&format!("/payments/phonepe/return/{mtid}")));
    assert!(pay["callbackUrl"].as_str().expect("callbackUrl").ends_with("/api/payments/phonepe/callback"));
    let mobile = pay["mobileNumber"].as_str().expect("mobileNumber");
    assert!(mobile.len() == 10 && mobile.bytes().all(|b| b.is_ascii_digit()), "{mobile}");
    assert_eq!(balance(&app, &asha).await, "0.00");
}

#[actix_rt::test]
async fn a_signed_success_callback_credits_once_and_replays_change_nothing() {
    let (app, fake) = spawn_with_fake().await;
    let asha = app.driver("asha").await;
    let started = recharge(&app, &asha, json!(1000)).await;
    let mtid = mtid(&started);

    let (status, body) = fake.fire_callback(&callback_url(&app), &mtid, Reply::Success, Signature::Valid, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["state"], "succeeded");
    assert_eq!(balance(&app, &asha).await, "1000.00");
    assert_eq!(entries(&app, &asha).await, 1);

    for _ in 0..3 {
        let (status, body) = fake.replay_last_callback().await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["state"], "succeeded");
    }
    // A later failure callback for the same transaction cannot undo it either.
    let (status, _) = fake.fire_callback(&callback_url(&app), &mtid, Reply::Failure, Signature::Valid, None).await;
    assert_eq!(status, 200);
    assert_eq!(balance(&app, &asha).await, "1000.00");
    assert_eq!(entries(&app, &asha).await, 1);

    let (status, body) = app.call("GET", &format!("/api/payments/{}", started["id"]), Some(&asha.token), None).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["state"], "succeeded");
    assert_eq!(body["data"]["providerReference"], format!("T{mtid}"));
    // A settled payment is not asked about again.
    assert!(fake.status_calls().is_empty());
}

#[actix_rt::test]
async fn forged_mismatched_unknown_and_malformed_callbacks_are_refused_and_change_nothing() {
    let (app, fake) = spawn_with_fake().await;
    let asha = app.driver("asha").await;
    let started = recharge(&app, &asha, json!(1000)).await;
    let mtid = mtid(&started);
    let url = callback_url(&app);

    let (status, body) = fake.fire_callback(&url, &mtid, Reply::Success, Signature::Forged, None).await;
    assert_eq!((status, error_code(&body)), (400, "invalid_checksum"));
    let (status, body) = fake.fire_callback(&url, &mtid, Reply::Success, Signature::Missing, None).await;
    assert_eq!((status, error_code(&body)), (400, "invalid_checksum"));
    let (status, body) = fake.fire_callback(&url, &mtid, Reply::Success, Signature::Valid, Some(1)).await;
    assert_eq!((status, error_code(&body)), (400, "amount_mismatch"));
    let (status, body) = fake.fire_callback(&url, &mtid, Reply::Success, Signature::Valid, Some(100_001)).await;
    assert_eq!((status, error_code(&body)), (400, "amount_mismatch"));
    let (status, body) =
        fake.fire_callback(&url, "KW999TUNKNOWN", Reply::Success, Signature::Valid, Some(100_000)).await;
    assert_eq!((status, error_code(&body)), (400, "unknown_transaction"));
    for raw in ["not json", "{\"response\": 12}", "{}"] {
        let (status, body) = app.post_raw("/api/payments/phonepe/callback", "application/json", raw).await;
        assert_eq!((status, error_code(&body)), (400, "malformed_callback"), "{raw}");
    }

    assert_eq!(balance(&app, &asha).await, "0.00");
    assert_eq!(entries(&app, &asha).await, 0);
    assert_eq!(stored_state(&app, &started).await, "pending");

    // The genuine one still works afterwards.
    let (status, _) = fake.fire_callback(&url, &mtid, Reply::Success, Signature::Valid, None).await;
    assert_eq!(status, 200);
    assert_eq!(balance(&app, &asha).await, "1000.00");
}

#[actix_rt::test]
async fn a_failure_callback_marks_the_payment_failed_and_a_pending_one_waits() {
    let (app, fake) = spawn_with_fake().await;
    let asha = app.driver("asha").await;
    let started = recharge(&app, &asha, json!(2000)).await;
    let mtid = mtid(&started);
    let (status, body) = fake.fire_callback(&callback_url(&app), &mtid, Reply::Pending, Signature::Valid, None).await;
    assert_eq!((status, &body["data"]["state"]), (200, &json!("pending")));
    let (status, body) = fake.fire_callback(&callback_url(&app), &mtid, Reply::Failure, Signature::Valid, None).await;
    assert_eq!((status, &body["data"]["state"]), (200, &json!("failed")));
    assert_eq!(stored_state(&app, &started).await, "failed");
    let reason: String =
        scalar(&app, &format!("SELECT failure_reason FROM payments WHERE id = {}", started["id"])).await;
    assert_eq!(reason, "PAYMENT_DECLINED");
    assert_eq!(balance(&app, &asha).await, "0.00");
    assert_eq!(entries(&app, &asha).await, 0);
}

#[actix_rt::test]
async fn the_sweep_settles_pending_payments_from_the_status_api() {
    let (app, fake) = spawn_with_fake().await;
    let asha = app.driver("asha").await;
    let paid = recharge(&app, &asha, json!(1000)).await;
    let declined = recharge(&app, &asha, json!(700)).await;
    let garbled = recharge(&app, &asha, json!(600)).await;
    let malformed = recharge(&app, &asha, json!(550)).await;
    fake.set_status(&mtid(&paid), Reply::Success);
    fake.set_status(&mtid(&declined), Reply::Failure);
    fake.set_status(&mtid(&garbled), Reply::Garbage);
    fake.set_status(&mtid(&malformed), Reply::Malformed);

    // Too fresh to check.
    assert_eq!(reconcile(&app).await.checked, 0);
    app.clock.advance(ChronoDuration::minutes(2));
    let report = reconcile(&app).await;
    assert_eq!((report.checked, report.settled, report.errors, report.expired), (4, 2, 2, 0), "{report:?}");
    assert!(fake.checksum_failures().is_empty(), "{:?}", fake.checksum_failures());
    assert_eq!(stored_state(&app, &paid).await, "succeeded");
    assert_eq!(stored_state(&app, &declined).await, "failed");
    assert_eq!(stored_state(&app, &garbled).await, "pending");
    assert_eq!(stored_state(&app, &malformed).await, "pending");
    assert_eq!(balance(&app, &asha).await, "1000.00");
    assert_eq!(
        count(
            &app,
            &format!(
                "SELECT count(*) FROM payments WHERE id = {} AND check_attempts = 1 AND last_checked_at IS NOT NULL",
                garbled["id"]
            )
        )
        .await,
        1
    );

    // Checked a minute ago: not yet again.
    assert_eq!(reconcile(&app).await.checked, 0);
    // The gateway recovers: the next pass settles what it now knows, and only that.
    fake.set_status(&mtid(&garbled), Reply::Success);
    app.clock.advance(ChronoDuration::minutes(2));
    let report = reconcile(&app).await;
    assert_eq!((report.checked, report.settled, report.errors), (2, 1, 1), "{report:?}");
    assert_eq!(balance(&app, &asha).await, "1600.00");
    assert_eq!(entries(&app, &asha).await, 2);
    assert_eq!(
        count(&app, &format!("SELECT count(*) FROM payments WHERE id = {} AND check_attempts = 2", malformed["id"]))
            .await,
        1
    );

    // A later callback for an already-reconciled payment changes nothing.
    let (status, _) =
        fake.fire_callback(&callback_url(&app), &mtid(&paid), Reply::Success, Signature::Valid, None).await;
    assert_eq!(status, 200);
    assert_eq!(balance(&app, &asha).await, "1600.00");

    // Still pending after a day: expired, nothing credited.
    app.clock.advance(ChronoDuration::hours(25));
    let report = reconcile(&app).await;
    assert_eq!(report.expired, 1, "{report:?}");
    assert_eq!(stored_state(&app, &malformed).await, "expired");
    assert_eq!(balance(&app, &asha).await, "1600.00");
}

#[actix_rt::test]
async fn a_callback_racing_status_checks_credits_once() {
    let (app, fake) = spawn_with_fake().await;
    let asha = app.driver("asha").await;
    let started = recharge(&app, &asha, json!(1000)).await;
    let mtid = mtid(&started);
    fake.set_status(&mtid, Reply::Success);
    app.clock.advance(ChronoDuration::minutes(2));
    let path = format!("/api/payments/{}", started["id"]);
    let url = callback_url(&app);
    let (callback, sweep, polls) = tokio::join!(
        fake.fire_callback(&url, &mtid, Reply::Success, Signature::Valid, None),
        reconcile(&app),
        futures_util::future::join_all((0..4).map(|_| app.call("GET", &path, Some(&asha.token), None))),
    );
    assert_eq!(callback.0, 200, "{:?}", callback.1);
    assert!(sweep.errors == 0, "{sweep:?}");
    for (status, body) in polls {
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(balance(&app, &asha).await, "1000.00");
    assert_eq!(entries(&app, &asha).await, 1);
    assert_eq!(stored_state(&app, &started).await, "succeeded");
}

#[actix_rt::test]
async fn returning_from_phonepe_checks_the_status_and_shows_the_result() {
    let (app, fake) = spawn_with_fake().await;
    let asha = app.driver("asha").await;
    let started = recharge(&app, &asha, json!(1000)).await;
    let mtid = mtid(&started);

    // PhonePe has not decided yet: the page says pending.
    let (status, html) = app.get_text(&format!("/payments/phonepe/return/{mtid}")).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Payment pending"), "{html}");
    assert_eq!(fake.status_calls(), vec![mtid.clone()]);

    // Now it has; the browser comes back with a POST (whose body is not trusted).
    fake.set_status(&mtid, Reply::Success);
    let client = awc::Client::builder().disable_redirects().finish();
    let response = client
        .post(app.url(&format!("/payments/phonepe/return/{mtid}")))
        .send_form(&[("code", "PAYMENT_SUCCESS"), ("amount", "99999999")])
        .await
        .expect("sent");
    assert_eq!(response.status().as_u16(), 303);
    let location = response.headers().get("location").and_then(|l| l.to_str().ok()).expect("location").to_owned();
    let (_, html) = app.get_text(&location).await;
    assert!(html.contains("Payment successful") && html.contains("₹1000.00"), "{html}");
    assert_eq!(balance(&app, &asha).await, "1000.00");
    assert!(fake.checksum_failures().is_empty());

    let (status, _) = app.get_text("/payments/phonepe/return/KW1TNOSUCHPAYMENT").await;
    assert_eq!(status, 404);
}

#[actix_rt::test]
async fn reading_a_pending_payment_asks_phonepe_first() {
    let (app, fake) = spawn_with_fake().await;
    let asha = app.driver("asha").await;
    let started = recharge(&app, &asha, json!(1000)).await;
    let path = format!("/api/payments/{}", started["id"]);
    let (status, body) = app.call("GET", &path, Some(&asha.token), None).await;
    assert_eq!((status, &body["data"]["state"]), (200, &json!("pending")));
    fake.set_status(&mtid(&started), Reply::Garbage);
    let (status, body) = app.call("GET", &path, Some(&asha.token), None).await;
    assert_eq!((status, &body["data"]["state"]), (200, &json!("pending")));
    fake.set_status(&mtid(&started), Reply::Success);
    let (status, body) = app.call("GET", &path, Some(&asha.token), None).await;
    assert_eq!((status, &body["data"]["state"]), (200, &json!("succeeded")));
    assert_eq!(balance(&app, &asha).await, "1000.00");

    // Not someone else's.
    let ravi = app.driver("ravi").await;
    let (status, body) = app.call("GET", &path, Some(&ravi.token), None).await;
    assert_eq!((status, error_code(&body)), (404, "not_found"));
    assert_eq!(fake.status_calls().len(), 3);
}

#[actix_rt::test]
async fn a_refused_pay_request_fails_the_payment_and_answers_502() {
    let (app, fake) = spawn_with_fake().await;
    let asha = app.driver("asha").await;
    for reply in [Reply::Failure, Reply::Garbage] {
        fake.set_pay_reply(reply);
        let (status, body) =
            app.call("POST", "/api/wallet/recharge", Some(&asha.token), Some(&json!({ "amount": 1000 }))).await;
        assert_eq!((status, error_code(&body)), (502, "payment_provider_unavailable"), "{reply:?}");
    }
    assert_eq!(
        count(&app, "SELECT count(*) FROM payments WHERE state = 'failed' AND completed_at IS NOT NULL").await,
        2
    );
    assert_eq!(balance(&app, &asha).await, "0.00");
}

#[actix_rt::test]
async fn the_sandbox_page_cannot_settle_a_phonepe_payment() {
    let (app, fake) = spawn_with_fake().await;
    let asha = app.driver("asha").await;
    let started = recharge(&app, &asha, json!(1000)).await;
    let mtid = mtid(&started);
    let (status, _) = app.get_text(&format!("/payments/sandbox/{mtid}")).await;
    assert_eq!(status, 404);
    let client = awc::Client::builder().disable_redirects().finish();
    let response = client
        .post(app.url(&format!("/payments/sandbox/{mtid}/complete")))
        .send_form(&[("outcome", "success")])
        .await
        .expect("sent");
    assert_eq!(response.status().as_u16(), 303);
    assert_eq!(stored_state(&app, &started).await, "pending");
    assert_eq!(balance(&app, &asha).await, "0.00");
    assert!(fake.checksum_failures().is_empty());
}
