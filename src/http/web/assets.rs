//! The web UI's stylesheet and script, compiled into the binary so the UI works on a closed
//! network (no CDN). Cached for a day; a deploy changes them at most that late.

use actix_web::HttpResponse;
use actix_web::http::header;

/// One stylesheet: the shared rules, then each area's.
const CSS: &str = concat!(
    include_str!("../../../templates/web/static/app.css"),
    include_str!("../../../templates/web/static/driver.css"),
    include_str!("../../../templates/web/static/bookings.css"),
    include_str!("../../../templates/web/static/owner.css"),
    include_str!("../../../templates/web/static/owner_sessions.css"),
);
/// One script: the shared socket and helpers, then each area's (each checks for its page).
const JS: &str = concat!(
    include_str!("../../../templates/web/static/app.js"),
    include_str!("../../../templates/web/static/driver.js"),
    include_str!("../../../templates/web/static/bookings.js"),
    include_str!("../../../templates/web/static/owner.js"),
    include_str!("../../../templates/web/static/owner_sessions.js"),
);

fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=86400"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(body)
}

/// `GET /static/app.css`.
pub async fn css() -> HttpResponse {
    asset("text/css; charset=utf-8", CSS)
}

/// `GET /static/app.js`.
pub async fn js() -> HttpResponse {
    asset("text/javascript; charset=utf-8", JS)
}
