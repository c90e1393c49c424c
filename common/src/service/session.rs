//! `POST /login`, `GET /me` and `POST /logout`: a server-side session behind a cookie.
//!
//! The cookie holds only a session id: 128 bits from the OS random source, as hex, so it can be
//! neither guessed nor forged. It is `HttpOnly` (no script reads it) and `SameSite=Lax` (no
//! cross-site POST carries it); not `Secure`, since zoo speaks plain HTTP. The name lives on the
//! server. Logging in while a session is open replaces it rather than leaving it behind.
//!
//! There is no clock here, so sessions do not expire with time: the store holds at most
//! [`MAX_SESSIONS`], and each login past that ends the oldest session.

use super::bounded::BoundedMap;
use super::params::{cookies, form_field, is_media_type, lock, Reject};
use crate::{Request, Response};
use std::sync::Mutex;

/// The most sessions open at once.
pub(super) const MAX_SESSIONS: usize = 10_000;
/// The longest user name, in bytes.
pub(super) const MAX_NAME_LEN: usize = 64;

/// The cookie that carries the session id.
const COOKIE: &str = "sid";
/// Random bytes in a session id: 128 bits, 32 hex digits.
const SID_BYTES: usize = 16;
const FORM: &str = "application/x-www-form-urlencoded";

/// The open sessions of one process: session id to user name.
#[derive(Debug)]
pub(super) struct Sessions {
    inner: Mutex<BoundedMap<String, String>>,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions {
            inner: Mutex::new(BoundedMap::new(MAX_SESSIONS)),
        }
    }
}

impl Sessions {
    /// `POST /login` with the form body `user=NAME`: opens a session and sets its cookie.
    pub fn login(&self, req: &Request) -> Result<Response, Reject> {
        // Without a Content-Type the body is read as a form anyway; another type is refused.
        if req
            .header("content-type")
            .is_some_and(|ct| !is_media_type(ct, FORM))
        {
            return Err(Reject::new(415, format!("the body must be {FORM}")));
        }
        let name = form_field(&req.body, "user")?
            .ok_or_else(|| Reject::bad_request("missing form field `user`"))?;
        let name = check_name(name)?;
        let sid = new_session_id()?;
        {
            let mut sessions = lock(&self.inner);
            for old in cookies(req, COOKIE) {
                remove_session(&mut sessions, old);
            }
            sessions.insert(sid.clone(), name.clone());
        }
        let cookie = format!("{COOKIE}={sid}; Path=/; HttpOnly; SameSite=Lax");
        Ok(Response::text(200, format!("logged in as {name}\n"))
            .with_header("Set-Cookie", cookie)
            .with_header("Cache-Control", "no-store"))
    }

    /// `GET /me`: the name of the session's user, or 401 without a valid session.
    pub fn me(&self, req: &Request) -> Response {
        let name = {
            let sessions = lock(&self.inner);
            // A browser may send several `sid` cookies (set for different paths): any live one
            // will do.
            cookies(req, COOKIE)
                .filter(|sid| is_session_id(sid))
                .find_map(|sid| sessions.get(std::str::from_utf8(sid).ok()?).cloned())
        };
        match name {
            Some(name) => {
                Response::text(200, format!("{name}\n")).with_header("Cache-Control", "no-store")
            }
            // RFC 9110 wants a challenge with every 401; cookie logins have no registered
            // scheme, so this one only names the realm and where to log in.
            None => Response::text(401, "no valid session: POST /login first\n").with_header(
                "WWW-Authenticate",
                r#"Cookie realm="zoo", form-action="/login""#,
            ),
        }
    }

    /// `POST /logout`: ends the session, if any, and expires the cookie. Ending a session that is
    /// already gone is no error, so a retried logout answers the same.
    pub fn logout(&self, req: &Request) -> Response {
        {
            let mut sessions = lock(&self.inner);
            for sid in cookies(req, COOKIE) {
                remove_session(&mut sessions, sid);
            }
        }
        let cookie = format!("{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax");
        Response::text(200, "logged out\n").with_header("Set-Cookie", cookie)
    }

    /// The number of open sessions.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        lock(&self.inner).len()
    }
}

fn remove_session(sessions: &mut BoundedMap<String, String>, sid: &[u8]) {
    if let Some(sid) = std::str::from_utf8(sid).ok().filter(|_| is_session_id(sid)) {
        sessions.remove(sid);
    }
}

/// A user name: UTF-8, 1 to [`MAX_NAME_LEN`] bytes, not only spaces, no control characters.
fn check_name(name: Vec<u8>) -> Result<String, Reject> {
    let name = String::from_utf8(name).map_err(|_| Reject::bad_request("`user` must be UTF-8"))?;
    if name.trim().is_empty() || name.len() > MAX_NAME_LEN || name.chars().any(char::is_control) {
        return Err(Reject::bad_request(format!(
            "`user` must be 1 to {MAX_NAME_LEN} bytes of printable text"
        )));
    }
    Ok(name)
}

/// A fresh session id from the OS random source, as lowercase hex.
fn new_session_id() -> Result<String, Reject> {
    let mut bytes = [0u8; SID_BYTES];
    getrandom::getrandom(&mut bytes)
        .map_err(|_| Reject::new(500, "no randomness from the OS for a session id"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Whether a cookie value has the shape of a session id; anything else is not looked up.
fn is_session_id(sid: &[u8]) -> bool {
    sid.len() == SID_BYTES * 2 && sid.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}
