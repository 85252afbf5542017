use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Form,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use tower_sessions::Session;
use uuid::Uuid;

use super::{
    InvitationState, Role, User, UserError, UserFields, invitation_state, redeem_invitation,
    send_invitation,
};
use crate::{
    audit::Actor,
    auth::CurrentUser,
    domain::{Email, NewPassword, PersonName},
    error::{AppError, AppResult},
    state::AppState,
    web::{Layout, flash, see_other},
};

#[derive(Template, WebTemplate)]
#[template(path = "users/list.html")]
pub struct ListPage {
    layout: Layout,
    users: Vec<User>,
}

pub async fn list(State(state): State<AppState>, layout: Layout) -> AppResult<ListPage> {
    let mut conn = state.pool.acquire().await?;
    Ok(ListPage {
        layout,
        users: super::list(&mut conn).await?,
    })
}

/// The form as typed, kept when it is shown again with errors.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct UserForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    chat_operator: Option<String>,
    #[serde(default)]
    mailbox: Option<String>,
    #[serde(default)]
    disabled: Option<String>,
}

#[derive(Default)]
pub struct FieldErrors {
    email: Option<&'static str>,
    name: Option<&'static str>,
    role: Option<&'static str>,
    form: Option<&'static str>,
}

impl FieldErrors {
    fn any(&self) -> bool {
        self.email.is_some() || self.name.is_some() || self.role.is_some() || self.form.is_some()
    }
}

impl UserForm {
    fn from_user(user: &User) -> Self {
        let flag = |on: bool| on.then(|| "on".to_string());
        Self {
            email: user.email.clone(),
            name: user.name.clone(),
            role: user.role.as_str().into(),
            chat_operator: flag(user.chat_operator),
            mailbox: flag(user.mailbox),
            disabled: flag(user.disabled_at.is_some()),
        }
    }

    fn parse(&self) -> Result<UserFields, FieldErrors> {
        let email = Email::parse(&self.email);
        let name = PersonName::parse(&self.name);
        let role = Role::parse(&self.role).ok_or("field.role.invalid");
        match (email, name, role) {
            (Ok(email), Ok(name), Ok(role)) => Ok(UserFields {
                email,
                name,
                role,
                chat_operator: self.chat_operator.is_some(),
                mailbox: self.mailbox.is_some(),
            }),
            (email, name, role) => Err(FieldErrors {
                email: email.err(),
                name: name.err(),
                role: role.err(),
                form: None,
            }),
        }
    }

    fn is_disabled(&self) -> bool {
        self.disabled.is_some()
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "users/form.html")]
pub struct FormPage {
    layout: Layout,
    /// `None` for a new user.
    user: Option<User>,
    form: UserForm,
    errors: FieldErrors,
    roles: [Role; 3],
}

impl FormPage {
    fn new(layout: Layout, user: Option<User>, form: UserForm, errors: FieldErrors) -> Self {
        Self {
            layout,
            user,
            form,
            errors,
            roles: Role::ALL,
        }
    }

    fn invalid(self) -> Response {
        (StatusCode::UNPROCESSABLE_ENTITY, self).into_response()
    }
}

pub async fn new_form(layout: Layout) -> FormPage {
    let form = UserForm {
        role: Role::Employee.as_str().into(),
        ..UserForm::default()
    };
    FormPage::new(layout, None, form, FieldErrors::default())
}

pub async fn create(
    State(state): State<AppState>,
    session: Session,
    admin: CurrentUser,
    layout: Layout,
    Form(form): Form<UserForm>,
) -> AppResult<Response> {
    let fields = match form.parse() {
        Ok(fields) => fields,
        Err(errors) => return Ok(FormPage::new(layout, None, form, errors).invalid()),
    };
    let actor = Actor::User(admin.id);
    let mut tx = state.pool.begin().await?;
    let id = match super::create(&mut tx, &fields, &actor).await {
        Ok(id) => id,
        Err(UserError::EmailTaken) => {
            let errors = FieldErrors {
                email: Some("field.email.taken"),
                ..FieldErrors::default()
            };
            return Ok(FormPage::new(layout, None, form, errors).invalid());
        }
        Err(e) => return Err(e.into()),
    };
    let user = super::find(&mut tx, id).await?.ok_or(AppError::NotFound)?;
    send_invitation(&mut tx, &state.config, &user, layout.lang(), &actor).await?;
    tx.commit().await?;
    flash::success(&session, "users.created").await?;
    Ok(see_other("/users").into_response())
}

async fn load(state: &AppState, id: &str) -> AppResult<User> {
    let id: Uuid = id.parse().map_err(|_| AppError::NotFound)?;
    let mut conn = state.pool.acquire().await?;
    super::find(&mut conn, id).await?.ok_or(AppError::NotFound)
}

pub async fn edit_form(
    State(state): State<AppState>,
    layout: Layout,
    Path(id): Path<String>,
) -> AppResult<FormPage> {
    let user = load(&state, &id).await?;
    let form = UserForm::from_user(&user);
    Ok(FormPage::new(
        layout,
        Some(user),
        form,
        FieldErrors::default(),
    ))
}

pub async fn update(
    State(state): State<AppState>,
    session: Session,
    admin: CurrentUser,
    layout: Layout,
    Path(id): Path<String>,
    Form(form): Form<UserForm>,
) -> AppResult<Response> {
    let user = load(&state, &id).await?;
    let fields = match form.parse() {
        Ok(fields) => fields,
        Err(errors) => return Ok(FormPage::new(layout, Some(user), form, errors).invalid()),
    };
    // Administrators cannot lock themselves out.
    if user.id == admin.id && (fields.role != Role::Admin || form.is_disabled()) {
        let errors = FieldErrors {
            form: Some("users.cannot_demote_self"),
            ..FieldErrors::default()
        };
        return Ok(FormPage::new(layout, Some(user), form, errors).invalid());
    }
    let mut tx = state.pool.begin().await?;
    let actor = Actor::User(admin.id);
    match super::update(&mut tx, &user, &fields, form.is_disabled(), &actor).await {
        Ok(changed)
            if changed.contains(&"email")
                && user.password_hash.is_none()
                && !form.is_disabled() =>
        {
            // Not signed up yet: the invitation goes to the corrected address.
            let updated = super::find(&mut tx, user.id)
                .await?
                .ok_or(AppError::NotFound)?;
            send_invitation(&mut tx, &state.config, &updated, layout.lang(), &actor).await?;
        }
        Ok(_) => {}
        Err(UserError::EmailTaken) => {
            let errors = FieldErrors {
                email: Some("field.email.taken"),
                ..FieldErrors::default()
            };
            return Ok(FormPage::new(layout, Some(user), form, errors).invalid());
        }
        Err(e) => return Err(e.into()),
    }
    tx.commit().await?;
    flash::success(&session, "users.saved").await?;
    Ok(see_other("/users").into_response())
}

pub async fn reinvite(
    State(state): State<AppState>,
    session: Session,
    admin: CurrentUser,
    layout: Layout,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let user = load(&state, &id).await?;
    if !user.is_active() {
        return Err(AppError::BadRequest("users.disabled_cannot_be_invited"));
    }
    let mut tx = state.pool.begin().await?;
    send_invitation(
        &mut tx,
        &state.config,
        &user,
        layout.lang(),
        &Actor::User(admin.id),
    )
    .await?;
    tx.commit().await?;
    flash::success(&session, "users.invited").await?;
    Ok(see_other(&format!("/users/{}", user.id)).into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "users/invitation.html")]
pub struct InvitationPage {
    layout: Layout,
    name: String,
    error: Option<&'static str>,
}

async fn valid_invitation(state: &AppState, token: &str) -> AppResult<User> {
    let mut conn = state.pool.acquire().await?;
    match invitation_state(&mut conn, token).await? {
        InvitationState::Valid(user) => Ok(user),
        InvitationState::Used => Err(AppError::Gone("invitation.used")),
        InvitationState::Expired => Err(AppError::Gone("invitation.expired")),
        InvitationState::Unknown => Err(AppError::NotFound),
    }
}

/// Opening the link only shows the form: mail scanners open links too.
pub async fn invitation_form(
    State(state): State<AppState>,
    layout: Layout,
    Path(token): Path<String>,
) -> AppResult<InvitationPage> {
    let user = valid_invitation(&state, &token).await?;
    Ok(InvitationPage {
        layout,
        name: user.name,
        error: None,
    })
}

#[derive(Deserialize)]
pub struct SetPasswordForm {
    password: String,
    repeat: String,
}

pub async fn accept_invitation(
    State(state): State<AppState>,
    session: Session,
    layout: Layout,
    Path(token): Path<String>,
    Form(form): Form<SetPasswordForm>,
) -> AppResult<Response> {
    let user = valid_invitation(&state, &token).await?;
    let refuse = |error| {
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            InvitationPage {
                layout,
                name: user.name.clone(),
                error: Some(error),
            },
        )
            .into_response()
    };
    let password = match NewPassword::parse(&form.password) {
        Ok(p) => p,
        Err(reason) => return Ok(refuse(reason)),
    };
    if form.password != form.repeat {
        return Ok(refuse("field.password.mismatch"));
    }
    let hash = state.passwords.hash(password.expose()).await?;
    let mut tx = state.pool.begin().await?;
    if redeem_invitation(&mut tx, &token, &hash).await?.is_none() {
        return Err(AppError::Gone("invitation.used"));
    }
    tx.commit().await?;
    flash::success(&session, "invitation.password_set").await?;
    Ok(see_other("/login").into_response())
}
