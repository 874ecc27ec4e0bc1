//! The live-update socket `GET /ws` over a real WebSocket: who may open it (a cookie session
//! with its CSRF token, or the app's bearer token), who may subscribe to what (a session's
//! driver and its station's owner, nobody else), and the `start` / `stop` commands, which follow
//! the REST API's rules and need the session's CSRF token when the socket came from a browser.

mod common;

use std::time::Duration;

use awc::error::WsProtocolError;
use awc::ws::{Frame, Message};
use common::charge_point::{ChargePoint, ConnectOptions};
use common::{TestApp, User, spawn_app};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use serde_json::{Value, json};

/// What `awc` hands back for a client WebSocket, by what it does.
trait Socket: Sink<Message, Error = WsProtocolError> + Stream<Item = Result<Frame, WsProtocolError>> + Unpin {}
impl<T: Sink<Message, Error = WsProtocolError> + Stream<Item = Result<Frame, WsProtocolError>> + Unpin> Socket for T {}

/// An owner's station with the charger `id`, connected, booted and Available on connector 1.
async fn charger(app: &TestApp, owner: &User, id: &str) -> ChargePoint {
    common::sql::exec(
        app,
        &format!(
            "INSERT INTO stations (owner_id, name, address, price_per_kwh) VALUES ({}, 'Hub', 'MG Road', 20)",
            owner.id
        ),
    )
    .await;
    common::sql::exec(
        app,
        &format!("INSERT INTO chargers (charge_point_id, station_id) SELECT '{id}', max(id) FROM stations"),
    )
    .await;
    let options = ConnectOptions { clock: app.clock.clone(), ..Default::default() };
    let charger = ChargePoint::connect_with(&app.ocpp_url, id, options).await.expect("charger connects");
    assert_eq!(charger.boot().await.expect("boot")["status"], "Accepted");
    charger.status(1, "Available", "NoError").await.expect("status");
    charger
}

/// Opens `/ws` with a bearer token.
async fn bearer_socket(app: &TestApp, user: &User) -> impl Socket + use<> {
    let (_, socket) = app
        .client
        .ws(app.url("/ws"))
        .bearer_auth(&user.token)
        .connect()
        .await
        .unwrap_or_else(|e| panic!("socket for {}: {e}", user.username));
    socket
}

/// The value of the cookie `name` a response sets.
fn set_cookie<S>(response: &awc::ClientResponse<S>, name: &str) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&format!("{name}=")).map(|rest| rest.split(';').next().unwrap_or("").to_owned()))
        .unwrap_or_else(|| panic!("no {name} cookie set"))
}

/// Signs in through the login form; answers the session cookie and the session's CSRF token.
async fn web_session(app: &TestApp, login: &str) -> (String, String) {
    let response = app.client.get(app.url("/login")).send().await.expect("login page");
    let form_token = set_cookie(&response, "kw_form");
    // The 303 and its cookie are what this wants: no following of redirects.
    let client = awc::Client::builder().disable_redirects().finish();
    let response = client
        .post(app.url("/login"))
        .insert_header(("cookie", format!("kw_form={form_token}")))
        .send_form(&[("login", login), ("pin", "1234"), ("csrf", form_token.as_str())])
        .await
        .expect("login posted");
    assert_eq!(response.status().as_u16(), 303, "signed in");
    let session = set_cookie(&response, "kw_session");
    let mut page = app
        .client
        .get(app.url("/"))
        .insert_header(("cookie", format!("kw_session={session}")))
        .send()
        .await
        .expect("dashboard");
    let html = String::from_utf8(page.body().await.expect("body").to_vec()).expect("utf-8");
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a CSRF field on the dashboard")
        .to_owned();
    (session, csrf)
}

async fn send(socket: &mut impl Socket, message: Value) {
    socket.send(Message::Text(message.to_string().into())).await.expect("frame sent");
}

/// The next JSON frame that satisfies `wanted` (pings and other frames are skipped).
async fn next_where(socket: &mut impl Socket, wanted: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let frame = tokio::time::timeout_at(deadline, socket.next())
            .await
            .expect("an answer within 10 s")
            .expect("socket open")
            .expect("valid frame");
        if let Frame::Text(bytes) = frame {
            let value: Value = serde_json::from_slice(&bytes).expect("JSON frame");
            if wanted(&value) {
                return value;
            }
        }
    }
}

async fn result_of(socket: &mut impl Socket, id: &str) -> Value {
    next_where(socket, |v| v["type"] == "result" && v["id"] == id).await
}

async fn subscription(socket: &mut impl Socket, topic: &str) -> String {
    send(socket, json!({ "type": "subscribe", "topic": topic })).await;
    let answer = next_where(socket, |v| v["topic"] == topic && v["type"] != "sessionUpdate").await;
    answer["type"].as_str().expect("type").to_owned()
}

#[actix_rt::test]
async fn the_app_starts_and_stops_over_the_socket_and_only_the_driver_and_owner_watch_the_session() {
    let app = spawn_app().await;
    let owner = app.owner("sock-owner").await;
    let driver = app.driver("sock-driver").await;
    let stranger = app.driver("sock-stranger").await;
    app.fund(&driver, 1000).await;
    let charger = charger(&app, &owner, "CP-SOCK").await;

    let mut socket = bearer_socket(&app, &driver).await;
    // A start on a connector that does not exist: the REST API's error, and nothing is sent.
    send(&mut socket, json!({ "type": "start", "id": "1", "chargePointId": "CP-SOCK", "connectorId": 9 })).await;
    let refused = result_of(&mut socket, "1").await;
    assert_eq!(refused["ok"], false);
    assert!(refused["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{refused}");

    send(&mut socket, json!({ "type": "start", "id": "2", "chargePointId": "CP-SOCK", "connectorId": 1 })).await;
    let started = result_of(&mut socket, "2").await;
    assert_eq!(started["ok"], true, "{started}");
    let session_id = started["data"]["sessionId"].as_i64().expect("session id");
    assert!(charger.expect_call("RemoteStartTransaction", Duration::from_secs(10)).await.is_some());
    charger.start_transaction(1, &driver.id_tag, 0, app.clock.now()).await.expect("StartTransaction");
    assert!(
        common::eventually(async || {
            common::sql::count(
                &app,
                &format!("SELECT count(*) FROM charging_sessions WHERE id = {session_id} AND status = 'active'"),
            )
            .await
                == 1
        })
        .await,
        "the charger's StartTransaction made the session active"
    );

    // The driver and the station's owner may watch it; another driver may not.
    let topic = format!("session:{session_id}");
    assert_eq!(subscription(&mut socket, &topic).await, "subscribed");
    let mut owner_socket = bearer_socket(&app, &owner).await;
    assert_eq!(subscription(&mut owner_socket, &topic).await, "subscribed");
    let mut stranger_socket = bearer_socket(&app, &stranger).await;
    assert_eq!(subscription(&mut stranger_socket, &topic).await, "error");
    assert_eq!(subscription(&mut stranger_socket, &format!("user:{}", driver.id)).await, "error");

    // The stranger cannot stop it either; the driver can.
    send(&mut stranger_socket, json!({ "type": "stop", "id": "s", "sessionId": session_id })).await;
    let refused = result_of(&mut stranger_socket, "s").await;
    assert_eq!((refused["ok"].clone(), refused["error"]["code"].clone()), (json!(false), json!("not_found")));
    send(&mut socket, json!({ "type": "stop", "id": "3", "sessionId": session_id })).await;
    let stopped = result_of(&mut socket, "3").await;
    assert_eq!(stopped["ok"], true, "{stopped}");
    assert_eq!(stopped["data"]["sessionId"], session_id);
    assert!(charger.expect_call("RemoteStopTransaction", Duration::from_secs(10)).await.is_some());
}

#[actix_rt::test]
async fn a_browser_socket_needs_the_csrf_token_to_open_and_for_every_command() {
    let app = spawn_app().await;
    let owner = app.owner("csrf-owner").await;
    let driver = app.driver("csrf-driver").await;
    app.fund(&driver, 1000).await;
    let charger = charger(&app, &owner, "CP-CSRF").await;
    let (session, csrf) = web_session(&app, "csrf-driver").await;

    // Without the token in the URL, a page of another site could open it: refused.
    let refused = app.client.ws(app.url("/ws")).header("cookie", format!("kw_session={session}")).connect().await;
    assert!(refused.is_err(), "socket opened without the CSRF token");

    let (_, mut socket) = app
        .client
        .ws(app.url(&format!("/ws?csrf={csrf}")))
        .header("cookie", format!("kw_session={session}"))
        .connect()
        .await
        .expect("socket opens with the token");
    assert_eq!(subscription(&mut socket, &format!("user:{}", driver.id)).await, "subscribed");

    send(
        &mut socket,
        json!({ "type": "start", "id": "a", "csrf": "wrong", "chargePointId": "CP-CSRF", "connectorId": 1 }),
    )
    .await;
    let refused = result_of(&mut socket, "a").await;
    assert_eq!(refused["error"]["code"], "csrf");
    assert!(charger.expect_call("RemoteStartTransaction", Duration::from_millis(500)).await.is_none(), "nothing sent");
    assert_eq!(common::sql::count(&app, "SELECT count(*) FROM charging_sessions").await, 0);

    send(
        &mut socket,
        json!({ "type": "start", "id": "b", "csrf": csrf, "chargePointId": "CP-CSRF", "connectorId": 1 }),
    )
    .await;
    let started = result_of(&mut socket, "b").await;
    assert_eq!(started["ok"], true, "{started}");
    assert!(charger.expect_call("RemoteStartTransaction", Duration::from_secs(10)).await.is_some());

    // Garbage gets a clear error and the socket stays usable.
    send(&mut socket, json!({ "type": "launch" })).await;
    let error = next_where(&mut socket, |v| v["type"] == "error").await;
    assert!(error["message"].as_str().is_some_and(|m| m.contains("subscribe")), "{error}");
    send(&mut socket, json!({ "type": "stop", "id": "c", "sessionId": started["data"]["sessionId"] })).await;
    assert_eq!(result_of(&mut socket, "c").await["error"]["code"], "csrf");
}
