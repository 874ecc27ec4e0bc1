//! The web UI's cookie session and its guards: the `WebSession` extractor (a signed-in browser,
//! or a 303 to `/login?next=…`), CSRF checks for every state-changing form, the pre-session form
//! token that protects the sign-in and sign-up forms, and `WebError`, which renders as a page.
//!
//! A session is a row in `auth_tokens` with `kind = 'web'`: the cookie carries a random secret
//! (only its SHA-256 is stored) and the row carries the session's CSRF token, which every form
//! repeats in a hidden `csrf` field.

use std::future::Future;
use std::pin::Pin;

use actix_web::cookie::{Cookie, SameSite, time};
use actix_web::dev::Payload;
use actix_web::http::{Method, StatusCode, header};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use askama::Template;
use chrono::{DateTime, Utc};
use kilowatt_actors::accounts::{self, Role};
use kilowatt_actors::store::models::User;
use kilowatt_actors::store::pool;
use kilowatt_actors::store::tokens::{self, TokenKind};

use crate::auth::Auth;
use crate::http::error::ApiError;
use crate::state::AppState;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "kw_session";

/// The pre-session form token's cookie (sign-in and sign-up forms, before there is a session).
pub const FORM_COOKIE: &str = "kw_form";

/// A signed-in browser.
#[derive(Debug, Clone)]
pub struct WebSession {
    /// The user, as stored when the request arrived.
    pub user: User,
    /// Their role.
    pub role: Role,
    /// The session's row in `auth_tokens` (logout revokes it).
    pub token_id: i64,
    /// The token every state-changing form of this session must carry.
    pub csrf: String,
}

impl WebSession {
    /// Passes when `given` is this session's CSRF token; a 403 page otherwise.
    pub fn check_csrf(&self, given: &str) -> Result<(), WebError> {
        if same_secret(given, &self.csrf) {
            Ok(())
        } else {
            tracing::warn!(user_id = self.user.id, "form refused: missing or wrong CSRF token");
            Err(WebError::csrf())
        }
    }

    /// The same identity as the JSON API's extractor, to call the API's shared functions.
    pub fn auth(&self) -> Auth {
        Auth { user: self.user.clone(), token_id: self.token_id, role: self.role }
    }

    /// What the layout shows of the signed-in user.
    pub fn chrome(&self, title: &str) -> Chrome {
        let display = self.user.name.clone().unwrap_or_else(|| self.user.username.clone());
        Chrome {
            title: title.to_owned(),
            user: Some(display),
            csrf: self.csrf.clone(),
            owner: self.role != Role::Driver,
        }
    }
}

/// What the base layout needs: the page title, and who is signed in (with the CSRF token for
/// the sign-out form in the header).
#[derive(Debug, Clone)]
pub struct Chrome {
    /// The page title.
    pub title: String,
    /// The signed-in user's display name.
    pub user: Option<String>,
    /// The session's CSRF token (empty when signed out).
    pub csrf: String,
    /// Owners and admins see the owner links.
    pub owner: bool,
}

impl Chrome {
    /// The layout for a signed-out visitor.
    pub fn anonymous(title: &str) -> Self {
        Chrome { title: title.to_owned(), user: None, csrf: String::new(), owner: false }
    }
}

impl FromRequest for WebSession {
    type Error = WebError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, WebError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let secret = req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned());
        // After sign-in, come back to the page asked for (a GET); a form post starts over at home.
        let next = if req.method() == Method::GET { req.uri().to_string() } else { "/".to_owned() };
        Box::pin(async move {
            let state = state.ok_or_else(|| WebError::from(ApiError::internal("AppState missing")))?;
            let secret = secret.filter(|s| !s.is_empty()).ok_or_else(|| WebError::SignIn { next: next.clone() })?;
            let mut conn = pool::connection(&state.pool).await.map_err(ApiError::from)?;
            let found =
                tokens::authenticate(&mut conn, &accounts::hash_token(&secret), TokenKind::Web, state.clock.now())
                    .await
                    .map_err(ApiError::from)?;
            let found = found.ok_or(WebError::SignIn { next })?;
            let role = Role::parse(&found.user.role).ok_or_else(|| ApiError::internal("unknown role in users"))?;
            let csrf = found.csrf_token.ok_or_else(|| ApiError::internal("web session without a CSRF token"))?;
            Ok(WebSession { user: found.user, role, token_id: found.token_id, csrf })
        })
    }
}

/// Starts a web session for `user_id`: stores it and answers the cookie to set.
pub async fn start(state: &AppState, user_id: i64) -> Result<Cookie<'static>, ApiError> {
    let (secret, hash) = accounts::new_token();
    let (csrf, _) = accounts::new_token();
    let now = state.clock.now();
    let ttl = chrono::Duration::from_std(state.config.policy.token_ttl).unwrap_or(chrono::Duration::days(30));
    let expires_at: DateTime<Utc> = now + ttl;
    let mut conn = pool::connection(&state.pool).await?;
    tokens::issue(&mut conn, user_id, TokenKind::Web, &hash, Some(&csrf), now, expires_at).await?;
    Ok(cookie(state, SESSION_COOKIE, secret, Some(ttl)))
}

/// Ends a web session: revokes it, and answers the cookie that clears it in the browser.
pub async fn end(state: &AppState, session: &WebSession) -> Result<Cookie<'static>, ApiError> {
    let mut conn = pool::connection(&state.pool).await?;
    tokens::revoke(&mut conn, session.token_id, state.clock.now()).await?;
    let mut removal = cookie(state, SESSION_COOKIE, String::new(), None);
    removal.make_removal();
    Ok(removal)
}

/// A cookie as the web UI sets them: HttpOnly, SameSite=Lax, `Path=/`, `Secure` behind TLS.
fn cookie(state: &AppState, name: &'static str, value: String, ttl: Option<chrono::Duration>) -> Cookie<'static> {
    let mut builder = Cookie::build(name, value)
        .http_only(true)
        .same_site(SameSite::Lax)
        .path("/")
        .secure(state.config.public_url.starts_with("https://"));
    if let Some(ttl) = ttl {
        builder = builder.max_age(time::Duration::seconds(ttl.num_seconds()));
    }
    builder.finish()
}

/// The pre-session form token: the one in the browser's cookie, or a new one and the cookie
/// to set. The sign-in and sign-up forms repeat it in their `csrf` field (double submit), so
/// another site cannot sign a browser into an account of its choosing.
pub fn form_token(req: &HttpRequest, state: &AppState) -> (String, Option<Cookie<'static>>) {
    match req.cookie(FORM_COOKIE).map(|c| c.value().to_owned()).filter(|v| v.len() >= 32) {
        Some(token) => (token, None),
        None => {
            let (token, _) = accounts::new_token();
            let set = cookie(state, FORM_COOKIE, token.clone(), None);
            (token, Some(set))
        }
    }
}

/// Passes when a pre-session form's `csrf` field repeats the form cookie.
pub fn check_form_token(req: &HttpRequest, given: &str) -> Result<(), WebError> {
    match req.cookie(FORM_COOKIE) {
        Some(cookie) if same_secret(given, cookie.value()) => Ok(()),
        _ => {
            tracing::warn!(path = req.path(), "form refused: missing or wrong form token");
            Err(WebError::csrf())
        }
    }
}

/// Compares two secrets in time independent of where they differ.
fn same_secret(given: &str, expected: &str) -> bool {
    !expected.is_empty()
        && given.len() == expected.len()
        && given.bytes().zip(expected.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// Only a local path may be a `next` after sign-in (never `//host` or `https://…`).
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(next) if next.starts_with('/') && !next.starts_with("//") && !next.starts_with("/\\") => next.to_owned(),
        _ => "/".to_owned(),
    }
}

/// A 303 to a page.
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// A rendered page with the web UI's headers: never cached (pages show private data), no
/// framing, and scripts only from this server.
pub fn html(status: StatusCode, template: &impl Template) -> Result<HttpResponse, WebError> {
    let body = template.render().map_err(ApiError::internal)?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "same-origin"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'self'; frame-ancestors 'none'",
        ))
        .body(body))
}

/// Why a page could not be served, rendered as a page (or a redirect to sign in).
#[derive(Debug)]
pub enum WebError {
    /// Not signed in: 303 to `/login?next=…`.
    SignIn {
        /// Where to come back to.
        next: String,
    },
    /// Anything else: a status and a message for people.
    Page {
        /// The status.
        status: StatusCode,
        /// A short title.
        title: &'static str,
        /// What happened and what to do.
        message: String,
    },
}

impl WebError {
    /// 403: a form without this session's token.
    pub fn csrf() -> Self {
        WebError::Page {
            status: StatusCode::FORBIDDEN,
            title: "Form expired",
            message: "This form has expired or did not come from Kilowatt. Go back, reload the page and try again."
                .to_owned(),
        }
    }

    /// 404: nothing there.
    pub fn not_found(message: impl Into<String>) -> Self {
        WebError::Page { status: StatusCode::NOT_FOUND, title: "Not found", message: message.into() }
    }
}

impl std::fmt::Display for WebError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WebError::SignIn { .. } => write!(f, "sign-in required"),
            WebError::Page { status, message, .. } => write!(f, "{}: {message}", status.as_u16()),
        }
    }
}

impl From<ApiError> for WebError {
    fn from(error: ApiError) -> Self {
        let status = error.status_code();
        if status == StatusCode::UNAUTHORIZED {
            return WebError::SignIn { next: "/".to_owned() };
        }
        let title = match status.as_u16() {
            403 => "Not allowed",
            404 => "Not found",
            409 => "Not possible right now",
            422 => "Please check your input",
            429 => "Too many attempts",
            503 => "Please try again",
            500..=599 => "Something went wrong",
            _ => "Something went wrong",
        };
        WebError::Page { status, title, message: error.message().to_owned() }
    }
}

/// The page every error renders as.
#[derive(Template)]
#[template(path = "web/error.html")]
struct ErrorPage<'a> {
    chrome: Chrome,
    message: &'a str,
}

impl ResponseError for WebError {
    fn status_code(&self) -> StatusCode {
        match self {
            WebError::SignIn { .. } => StatusCode::SEE_OTHER,
            WebError::Page { status, .. } => *status,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            WebError::SignIn { next } => {
                let next = percent_encoding::utf8_percent_encode(next, percent_encoding::NON_ALPHANUMERIC);
                see_other(&format!("/login?next={next}"))
            }
            WebError::Page { status, title, message } => {
                let page = ErrorPage { chrome: Chrome::anonymous(title), message };
                html(*status, &page).unwrap_or_else(|_| HttpResponse::build(*status).body(message.clone()))
            }
        }
    }
}
