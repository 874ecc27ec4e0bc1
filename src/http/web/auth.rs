//! Sign up, log in and log out in the browser. The account rules, PIN hashing and sign-in
//! throttling are the JSON API's own (`crate::http::api::auth`); these handlers only turn forms
//! into calls and results into pages and cookies.

use actix_web::ResponseError;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::FieldErrors;
use super::session::{self, Chrome, WebError, WebSession, check_form_token, form_token, html, safe_next, see_other};
use crate::http::api::auth::{NewAccount, check_credentials, client_addr, create_account};
use crate::state::AppState;

/// The sign-in page.
#[derive(Template)]
#[template(path = "web/login.html")]
struct LoginPage {
    chrome: Chrome,
    csrf: String,
    next: String,
    login: String,
    errors: FieldErrors,
}

/// The sign-up page.
#[derive(Template)]
#[template(path = "web/signup.html")]
struct SignupPage {
    chrome: Chrome,
    csrf: String,
    form: SignupForm,
    errors: FieldErrors,
}

/// `?next=` on the sign-in page.
#[derive(Debug, Default, Deserialize)]
pub struct NextQuery {
    #[serde(default)]
    next: Option<String>,
}

/// The sign-in form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LoginForm {
    csrf: String,
    next: String,
    login: String,
    pin: String,
}

/// The sign-up form (the PIN is never sent back to the page).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SignupForm {
    csrf: String,
    username: String,
    phone: String,
    pin: String,
    name: String,
    email: String,
    role: String,
}

/// Renders a page that carries the pre-session form token, setting its cookie when new.
fn with_form_cookie(
    status: StatusCode,
    page: &impl Template,
    cookie: Option<actix_web::cookie::Cookie<'static>>,
) -> Result<HttpResponse, WebError> {
    let mut response = html(status, page)?;
    if let Some(cookie) = cookie {
        response.add_cookie(&cookie).map_err(crate::http::error::ApiError::internal)?;
    }
    Ok(response)
}

/// `GET /login`: the sign-in form (home, when already signed in).
pub async fn login_page(
    req: HttpRequest,
    query: web::Query<NextQuery>,
    signed_in: Option<WebSession>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let next = safe_next(query.next.as_deref());
    if signed_in.is_some() {
        return Ok(see_other(&next));
    }
    let (csrf, cookie) = form_token(&req, &state);
    let page = LoginPage {
        chrome: Chrome::anonymous("Log in"),
        csrf,
        next,
        login: String::new(),
        errors: FieldErrors::default(),
    };
    with_form_cookie(StatusCode::OK, &page, cookie)
}

/// `POST /login`: checks the login and PIN (throttled like the API), starts a session and
/// goes to `next`; or shows the form again with what went wrong.
pub async fn login(
    req: HttpRequest,
    form: web::Form<LoginForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let form = form.into_inner();
    check_form_token(&req, &form.csrf)?;
    let next = safe_next(Some(&form.next));
    let again = |status: StatusCode, errors: FieldErrors| {
        let (csrf, cookie) = form_token(&req, &state);
        let page = LoginPage {
            chrome: Chrome::anonymous("Log in"),
            csrf,
            next: next.clone(),
            login: form.login.clone(),
            errors,
        };
        with_form_cookie(status, &page, cookie)
    };
    if form.login.trim().is_empty() {
        return again(StatusCode::UNPROCESSABLE_ENTITY, FieldErrors::field("login", "Enter your username or phone."));
    }
    if form.pin.is_empty() {
        return again(StatusCode::UNPROCESSABLE_ENTITY, FieldErrors::field("pin", "Enter your PIN."));
    }
    let user = match check_credentials(&state, &form.login, form.pin.clone(), &client_addr(&req)).await {
        Ok(user) => user,
        Err(error) if matches!(error.status_code().as_u16(), 401 | 422 | 429) => {
            return again(error.status_code(), FieldErrors::from_api(&error));
        }
        Err(error) => return Err(error.into()),
    };
    let cookie = session::start(&state, user.id).await?;
    tracing::info!(user_id = user.id, "signed in on the web");
    let mut response = see_other(&next);
    response.add_cookie(&cookie).map_err(crate::http::error::ApiError::internal)?;
    Ok(response)
}

/// `GET /signup`: the sign-up form.
pub async fn signup_page(
    req: HttpRequest,
    signed_in: Option<WebSession>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    if signed_in.is_some() {
        return Ok(see_other("/"));
    }
    let (csrf, cookie) = form_token(&req, &state);
    let page = SignupPage {
        chrome: Chrome::anonymous("Sign up"),
        csrf,
        form: SignupForm::default(),
        errors: FieldErrors::default(),
    };
    with_form_cookie(StatusCode::OK, &page, cookie)
}

/// `POST /signup`: creates the account with the API's rules and signs in; or shows the form
/// again with the error next to its field.
pub async fn signup(
    req: HttpRequest,
    form: web::Form<SignupForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let mut form = form.into_inner();
    check_form_token(&req, &form.csrf)?;
    let account = NewAccount {
        username: &form.username,
        phone: &form.phone,
        pin: std::mem::take(&mut form.pin),
        email: Some(&form.email),
        name: Some(&form.name),
        role: Some(form.role.as_str()).filter(|r| !r.is_empty()),
    };
    let user = match create_account(&state, account).await {
        Ok(user) => user,
        Err(error) if matches!(error.status_code().as_u16(), 409 | 422) => {
            let (csrf, cookie) = form_token(&req, &state);
            let errors = FieldErrors::from_api(&error);
            let page = SignupPage { chrome: Chrome::anonymous("Sign up"), csrf, form, errors };
            return with_form_cookie(error.status_code(), &page, cookie);
        }
        Err(error) => return Err(error.into()),
    };
    let cookie = session::start(&state, user.id).await?;
    let mut response = see_other("/");
    response.add_cookie(&cookie).map_err(crate::http::error::ApiError::internal)?;
    Ok(response)
}

/// The sign-out form: just the CSRF token.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CsrfForm {
    /// The session's CSRF token.
    pub csrf: String,
}

/// `POST /logout`: ends the session (revoked in the database, cookie cleared), back to sign-in.
pub async fn logout(
    session: WebSession,
    form: web::Form<CsrfForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    session.check_csrf(&form.csrf)?;
    let removal = session::end(&state, &session).await?;
    tracing::info!(user_id = session.user.id, "signed out on the web");
    let mut response = see_other("/login");
    response.add_cookie(&removal).map_err(crate::http::error::ApiError::internal)?;
    Ok(response)
}
