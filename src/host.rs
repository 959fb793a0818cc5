//! Who and where: this machine's host name and the user's login name, as runs, benchmarks and
//! model versions record them.

/// The login name: $USER, else the password database's name for our uid.
pub fn user_name() -> String {
    if let Ok(u) = std::env::var("USER").or_else(|_| std::env::var("LOGNAME"))
        && !u.is_empty()
    {
        return u;
    }
    // SAFETY: getpwuid_r writes into our buffer and record; the name is copied out before return.
    unsafe {
        let mut pw: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 4096];
        let mut out: *mut libc::passwd = std::ptr::null_mut();
        let uid = libc::getuid();
        if libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut out) == 0
            && !out.is_null()
        {
            return std::ffi::CStr::from_ptr(pw.pw_name)
                .to_string_lossy()
                .into_owned();
        }
        format!("uid {uid}")
    }
}

/// The host name set in the user's config (`host = "…"`), for this process.
static CONFIGURED: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Take the host name from the user's config for the rest of this process (`GANTRY_HOST` still
/// wins). Boxes whose host names clash, and tests that play several hosts on one machine, set one.
pub fn set_configured(name: &str) {
    let name = name.trim();
    if !name.is_empty() {
        let _ = CONFIGURED.set(name.to_string());
    }
}

/// This machine's name as runs, benchmarks and models record it: `GANTRY_HOST`, else `host` in
/// the user's config, else the system's host name. Recovery ends only the runs of this name.
pub fn hostname() -> String {
    if let Ok(h) = std::env::var("GANTRY_HOST")
        && !h.trim().is_empty()
    {
        return h.trim().to_string();
    }
    if let Some(h) = CONFIGURED.get() {
        return h.clone();
    }
    gethostname::gethostname().to_string_lossy().into_owned()
}
