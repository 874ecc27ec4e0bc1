//! Notifications end to end: real email to an SMTP server listening on loopback inside the
//! test (read back and taken apart), SMS to a fake HTTP provider that checks its key; every
//! attempt recorded; retries with backoff on the test's clock; email and SMS as each other's
//! fallback; the driver's channel choice; one notification per booking and kind; a restart
//! that resumes a pending delivery; and the driver's list in the API.

mod common;

use std::time::Duration;

use chrono::Duration as ChronoDuration;
use common::sms::FakeSms;
use common::smtp::{self, Refuse, SmtpSink};
use common::sql::{count, exec, scalar};
use common::{TestApp, User, eventually, spawn_app_with};
use kilowatt_actors::notifier::Notify;
use serde_json::{Value, json};

struct Harness {
    app: TestApp,
    smtp: SmtpSink,
    sms: FakeSms,
}

/// Kilowatt pointed at a fresh SMTP sink and SMS fake; `email` false leaves SMTP unset.
async fn spawn(email: bool) -> Harness {
    spawn_with(email, &[]).await
}

/// As [`spawn`], with more settings.
async fn spawn_with(email: bool, more: &[(&'static str, &str)]) -> Harness {
    let (smtp, sms) = (SmtpSink::start().await, FakeSms::start().await);
    let mut settings = sms.settings();
    if email {
        settings.extend(smtp.settings());
    }
    settings.extend(more.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let vars: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Harness { app: spawn_app_with(&vars).await, smtp, sms }
}

/// A driver with an email address and these channel choices; answers the driver and phone.
async fn driver(app: &TestApp, name: &str, notify_email: bool, notify_sms: bool) -> (User, String) {
    let user = app.driver(name).await;
    let patch = json!({ "email": format!("{name}@example.com"), "notifyEmail": notify_email, "notifySms": notify_sms });
    let (status, body) = app.call("PATCH", "/api/me", Some(&user.token), Some(&patch)).await;
    assert_eq!(status, 200, "{body}");
    let phone = body["data"]["phone"].as_str().expect("phone").to_owned();
    (user, phone)
}

fn message(user: &User, kind: &str) -> Notify {
    Notify {
        user_id: user.id,
        kind: kind.to_owned(),
        subject: "Your slot has started".to_owned(),
        text: "Your slot at Hub, connector 1, has started.\n\nCheck in within 30 minutes.".to_owned(),
        html: Some("<p>Your slot at <b>Hub</b> has started.</p>".to_owned()),
        sms: Some("Kilowatt: your slot at Hub has started. Check in within 30 min.".to_owned()),
        booking_id: None,
        session_id: None,
    }
}

fn notify(app: &TestApp, msg: Notify) {
    app.server.as_ref().expect("server running").state.notifier.do_send(msg);
}

async fn status_of(app: &TestApp, user: &User) -> String {
    scalar(app, &format!("SELECT status FROM notifications WHERE user_id = {} ORDER BY id DESC LIMIT 1", user.id)).await
}

/// How long after attempt `number` failed the next one was scheduled, in seconds.
async fn retry_wait_seconds(app: &TestApp, number: i32) -> i64 {
    scalar(
        app,
        &format!(
            "SELECT extract(epoch FROM next_attempt_at - attempted_at)::bigint FROM notification_deliveries \
             WHERE attempt = {number}"
        ),
    )
    .await
}

/// `channel:attempt:outcome[:retry]` for each recorded attempt of the driver's latest
/// notification (`:retry` when another attempt is scheduled; `sending` while it is made).
async fn attempts(app: &TestApp, user: &User) -> Vec<String> {
    let listed: String = scalar(
        app,
        &format!(
            "SELECT coalesce(string_agg(channel || ':' || attempt || ':' || CASE WHEN error = '{}' THEN 'sending' \
             ELSE outcome || CASE WHEN next_attempt_at IS NULL THEN '' ELSE ':retry' END END, ',' \
             ORDER BY attempted_at, id), '') \
             FROM notification_deliveries WHERE notification_id = \
             (SELECT max(id) FROM notifications WHERE user_id = {})",
            kilowatt_actors::notifier::SENDING,
            user.id
        ),
    )
    .await;
    listed.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

async fn wait_for_attempts(app: &TestApp, user: &User, expected: &[&str]) {
    let ok = eventually(async || attempts(app, user).await == expected).await;
    if !ok {
        let errors: String = scalar(
            app,
            "SELECT coalesce(string_agg(channel || ':' || attempt || ' ' || coalesce(error, '-'), '; '), '') \
             FROM notification_deliveries",
        )
        .await;
        panic!("attempts: expected {expected:?}, got {:?} ({errors})", attempts(app, user).await);
    }
}

#[actix_rt::test]
async fn a_notification_goes_out_by_email_and_sms_and_is_recorded() {
    let Harness { app, smtp, sms } = spawn(true).await;
    let (asha, phone) = driver(&app, "asha", true, true).await;

    notify(&app, message(&asha, "booking_slot_started"));

    assert!(eventually(async || smtp.messages_to("asha@example.com").len() == 1).await, "no email arrived");
    assert!(eventually(async || sms.messages_to(&phone).len() == 1).await, "no SMS arrived");
    let email = &smtp.messages_to("asha@example.com")[0];
    assert_eq!(email.from, "no-reply@kilowatt.test");
    let parsed = smtp::parse(&email.data);
    assert!(parsed.header("To").is_some_and(|to| to.contains("asha@example.com")), "{:?}", parsed.headers);
    assert_eq!(parsed.header("Subject"), Some("Your slot has started"));
    assert!(parsed.header("Content-Type").is_some_and(|t| t.starts_with("multipart/alternative")));
    let text = parsed.part("text/plain").expect("a text part");
    assert!(text.contains("Your slot at Hub, connector 1, has started."), "{text}");
    assert!(text.contains("help@kilowatt.test"), "the footer names support: {text}");
    let html = parsed.part("text/html").expect("an HTML part");
    assert!(html.contains("<p>Your slot at <b>Hub</b> has started.</p>"), "{html}");
    assert!(html.contains("mailto:help@kilowatt.test"), "{html}");
    assert_eq!(sms.messages_to(&phone)[0].message, "Kilowatt: your slot at Hub has started. Check in within 30 min.");
    assert_eq!(sms.unauthorized(), 0);

    assert!(eventually(async || status_of(&app, &asha).await == "delivered").await);
    assert_eq!(attempts(&app, &asha).await, ["email:1:sent", "sms:1:sent"]);

    // Without its own SMS text, the SMS is the plain text cut to 160 characters.
    let mut long = message(&asha, "session_receipt");
    long.sms = None;
    long.text = format!("Charging finished. {}", "Energy and cost are in your history. ".repeat(10));
    notify(&app, long);
    assert!(eventually(async || sms.messages_to(&phone).len() == 2).await);
    let cut = &sms.messages_to(&phone)[1].message;
    assert_eq!(cut.chars().count(), 160);
    assert!(cut.starts_with("Charging finished. Energy") && cut.ends_with('…'), "{cut}");

    let metrics = app.get_text("/metrics").await.1;
    assert!(
        metrics.lines().any(|l| l.starts_with("kilowatt_notifications_total")
            && l.contains("channel=\"email\"")
            && l.contains("outcome=\"sent\"")),
        "{metrics}"
    );
}

#[actix_rt::test]
async fn a_refused_email_is_retried_with_backoff_and_no_sms_goes_to_a_driver_who_turned_it_off() {
    let Harness { app, smtp, sms } = spawn(true).await;
    let (ravi, phone) = driver(&app, "ravi", true, false).await;
    smtp.refuse(Refuse::Mail(451));

    notify(&app, message(&ravi, "queue_turn"));
    wait_for_attempts(&app, &ravi, &["email:1:failed:retry"]).await;
    let delay = retry_wait_seconds(&app, 1).await;
    assert_eq!(delay, 60, "the first retry is a minute later");

    // Not before it is due.
    app.clock.advance(ChronoDuration::seconds(50));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(attempts(&app, &ravi).await, ["email:1:failed:retry"]);

    app.clock.advance(ChronoDuration::seconds(10));
    wait_for_attempts(&app, &ravi, &["email:1:failed", "email:2:failed:retry"]).await;
    let delay = retry_wait_seconds(&app, 2).await;
    assert_eq!(delay, 120, "the wait doubles");

    smtp.refuse(Refuse::Nothing);
    app.clock.advance(ChronoDuration::minutes(2));
    wait_for_attempts(&app, &ravi, &["email:1:failed", "email:2:failed", "email:3:sent"]).await;
    assert_eq!(smtp.messages_to("ravi@example.com").len(), 1);
    assert!(eventually(async || status_of(&app, &ravi).await == "delivered").await);
    assert!(sms.messages_to(&phone).is_empty(), "SMS is off for this driver and email worked");
    assert_eq!(sms.requests(), 0);
}

#[actix_rt::test]
async fn when_email_fails_for_good_the_sms_goes_out_instead() {
    let Harness { app, smtp, sms } = spawn(true).await;
    let (meera, phone) = driver(&app, "meera", true, false).await;
    smtp.refuse(Refuse::Data(554));

    notify(&app, message(&meera, "booking_expired"));

    wait_for_attempts(&app, &meera, &["email:1:failed", "sms:1:sent"]).await;
    assert_eq!(sms.messages_to(&phone).len(), 1, "SMS is the fallback even though the driver chose email only");
    assert!(smtp.messages().is_empty());
    assert!(eventually(async || status_of(&app, &meera).await == "delivered").await);
}

#[actix_rt::test]
async fn when_sms_keeps_failing_email_is_the_fallback_after_the_last_retry() {
    let Harness { app, smtp, sms } = spawn(true).await;
    let (kabir, _) = driver(&app, "kabir", false, true).await;
    sms.fail_with(Some(503));

    notify(&app, message(&kabir, "queue_turn"));
    let mut expected: Vec<String> = Vec::new();
    for (attempt, wait) in [(1, 1), (2, 2), (3, 4), (4, 8)] {
        expected.push(format!("sms:{attempt}:failed:retry"));
        let want: Vec<&str> = expected.iter().map(String::as_str).collect();
        wait_for_attempts(&app, &kabir, &want).await;
        assert!(smtp.messages().is_empty(), "no fallback while SMS is being retried");
        expected.last_mut().expect("an attempt").truncate(format!("sms:{attempt}:failed").len());
        app.clock.advance(ChronoDuration::minutes(wait));
    }
    // The fifth attempt fails too: SMS gives up and email (not chosen) takes over.
    expected.extend(["sms:5:failed".to_owned(), "email:1:sent".to_owned()]);
    let want: Vec<&str> = expected.iter().map(String::as_str).collect();
    wait_for_attempts(&app, &kabir, &want).await;
    assert_eq!(smtp.messages_to("kabir@example.com").len(), 1);
    assert_eq!(sms.requests(), 5);
    assert!(eventually(async || status_of(&app, &kabir).await == "delivered").await);

    // And when both give up, the notification has failed.
    smtp.refuse(Refuse::Mail(550));
    sms.fail_with(Some(400));
    notify(&app, message(&kabir, "booking_expired"));
    wait_for_attempts(&app, &kabir, &["sms:1:failed", "email:1:failed"]).await;
    assert!(eventually(async || status_of(&app, &kabir).await == "failed").await);
}

#[actix_rt::test]
async fn an_operator_sets_how_often_and_how_soon_a_failed_channel_is_retried() {
    let more = [("KILOWATT_NOTIFY_ATTEMPTS", "2"), ("KILOWATT_NOTIFY_RETRY_SECONDS", "30")];
    let Harness { app, smtp, sms } = spawn_with(true, &more).await;
    let (leela, _) = driver(&app, "leela", false, true).await;
    sms.fail_with(Some(503));

    notify(&app, message(&leela, "queue_turn"));
    wait_for_attempts(&app, &leela, &["sms:1:failed:retry"]).await;
    let wait = retry_wait_seconds(&app, 1).await;
    assert_eq!(wait, 30, "the first retry waits KILOWATT_NOTIFY_RETRY_SECONDS");
    app.clock.advance(ChronoDuration::seconds(30));
    // The second attempt is the last: SMS gives up and email takes over.
    wait_for_attempts(&app, &leela, &["sms:1:failed", "sms:2:failed", "email:1:sent"]).await;
    assert_eq!(sms.requests(), 2);
    assert_eq!(smtp.messages_to("leela@example.com").len(), 1);
}

#[actix_rt::test]
async fn without_smtp_email_is_skipped_and_sms_carries_the_message() {
    let Harness { app, sms, smtp: _smtp } = spawn(false).await;
    let (anil, phone) = driver(&app, "anil", true, false).await;

    notify(&app, message(&anil, "booking_slot_started"));

    wait_for_attempts(&app, &anil, &["email:1:skipped", "sms:1:sent"]).await;
    assert_eq!(sms.messages_to(&phone).len(), 1);
    let reason: String =
        scalar(&app, "SELECT error FROM notification_deliveries WHERE channel = 'email' AND outcome = 'skipped'").await;
    assert_eq!(reason, "email is not configured");
    assert!(eventually(async || status_of(&app, &anil).await == "delivered").await);
}

#[actix_rt::test]
async fn the_same_booking_and_kind_is_notified_once() {
    let Harness { app, smtp, sms } = spawn(true).await;
    let (priya, phone) = driver(&app, "priya", true, true).await;
    let owner = app.owner("owner-priya").await;
    exec(
        &app,
        &format!(
            "INSERT INTO stations (owner_id, name, address, price_per_kwh) VALUES ({}, 'Hub', 'MG Road', 18.50)",
            owner.id
        ),
    )
    .await;
    exec(&app, "INSERT INTO chargers (charge_point_id, station_id) SELECT 'CP-NOTIFY', max(id) FROM stations").await;
    exec(&app, "INSERT INTO connectors (charger_id, connector_number) SELECT id, 1 FROM chargers WHERE charge_point_id = 'CP-NOTIFY'").await;
    exec(
        &app,
        &format!(
            "INSERT INTO bookings (user_id, charger_id, connector_id, start_at, end_at, fee) \
             SELECT {}, c.id, k.id, now(), now() + interval '1 hour', 50 FROM chargers c JOIN connectors k ON k.charger_id = c.id",
            priya.id
        ),
    )
    .await;
    let booking_id: i64 = scalar(&app, "SELECT max(id) FROM bookings").await;

    for _ in 0..3 {
        notify(&app, Notify { booking_id: Some(booking_id), ..message(&priya, "booking_slot_started") });
    }
    // A different kind for the same booking is its own notification.
    notify(&app, Notify { booking_id: Some(booking_id), ..message(&priya, "booking_expired") });

    assert!(eventually(async || smtp.messages_to("priya@example.com").len() == 2).await);
    assert!(eventually(async || sms.messages_to(&phone).len() == 2).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(smtp.messages_to("priya@example.com").len(), 2, "no repeat");
    assert_eq!(count(&app, &format!("SELECT count(*) FROM notifications WHERE booking_id = {booking_id}")).await, 2);
}

#[actix_rt::test]
async fn a_restart_resumes_a_pending_delivery() {
    let Harness { mut app, smtp, sms } = spawn(true).await;
    let (dev, phone) = driver(&app, "dev", true, false).await;
    smtp.refuse(Refuse::Mail(421));

    notify(&app, message(&dev, "queue_turn"));
    wait_for_attempts(&app, &dev, &["email:1:failed:retry"]).await;

    let old_notifier = app.server.as_ref().expect("server running").state.notifier.clone();
    app.restart().await;
    assert!(eventually(async || !old_notifier.connected()).await, "the old notifier stopped with its server");
    smtp.refuse(Refuse::Nothing);
    // The retry is not due yet: the new notifier waits for it like the old one would have.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(smtp.messages().is_empty());
    app.clock.advance(ChronoDuration::minutes(1));

    wait_for_attempts(&app, &dev, &["email:1:failed", "email:2:sent"]).await;
    assert!(eventually(async || status_of(&app, &dev).await == "delivered").await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(smtp.messages_to("dev@example.com").len(), 1, "sent once, by the new notifier");
    assert!(sms.messages_to(&phone).is_empty());
}

#[actix_rt::test]
async fn drivers_list_their_own_notifications_newest_first() {
    let Harness { app, smtp, sms: _sms } = spawn(true).await;
    let (asha, _) = driver(&app, "asha", true, true).await;
    let (ravi, _) = driver(&app, "ravi", true, true).await;
    smtp.refuse(Refuse::Mail(451));

    notify(&app, message(&asha, "booking_slot_started"));
    wait_for_attempts(&app, &asha, &["email:1:failed", "sms:1:sent"]).await;
    assert!(eventually(async || status_of(&app, &asha).await == "delivered").await);
    notify(&app, Notify { subject: "Your turn".to_owned(), ..message(&asha, "queue_turn") });
    assert!(
        eventually(async || count(
            &app,
            &format!("SELECT count(*) FROM notifications WHERE user_id = {} AND status = 'delivered'", asha.id)
        )
        .await
            == 2)
        .await
    );
    notify(&app, message(&ravi, "queue_turn"));

    let (status, body) = app.call("GET", "/api/me/notifications", Some(&asha.token), None).await;
    assert_eq!(status, 200, "{body}");
    let data = &body["data"];
    assert_eq!(data["total"], 2);
    let items = data["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["kind"], "queue_turn");
    assert_eq!(items[0]["subject"], "Your turn");
    assert_eq!(items[1]["kind"], "booking_slot_started");
    assert_eq!(items[1]["status"], "delivered");
    assert_eq!(items[1]["text"], "Your slot at Hub, connector 1, has started.\n\nCheck in within 30 minutes.");
    let channels = &items[1]["channels"];
    assert_eq!(channels["sms"]["outcome"], "sent");
    assert_eq!(channels["sms"]["attempts"], 1);
    // Email failed once; SMS got it through, so the email retry was called off.
    assert_eq!(channels["email"]["outcome"], "failed");
    assert_eq!(channels["email"]["nextAttemptAt"], Value::Null);
    assert!(items[1]["createdAt"].is_string());

    let (status, body) = app.call("GET", "/api/me/notifications?limit=1&offset=1", Some(&asha.token), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["items"][0]["kind"], "booking_slot_started");
    assert_eq!(body["data"]["limit"], 1);

    let (status, body) = app.call("GET", "/api/me/notifications?limit=0", Some(&asha.token), None).await;
    assert_eq!((status, common::error_code(&body)), (422, "validation_failed"), "{body}");
    let (status, _) = app.call("GET", "/api/me/notifications", None, None).await;
    assert_eq!(status, 401);
}
