//! An objects store on S3 or a compatible one (MinIO, Ceph, R2, moto): `s3://bucket/prefix`,
//! objects at `prefix/ab/cdef…`. Requests are signed here (rusty-s3, SigV4 presigned URLs) and
//! sent with ureq. Credentials come as the AWS tools take them: `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`, else the profile `AWS_PROFILE` (or
//! `default`) of `~/.aws/credentials`. The region is `AWS_REGION` or `AWS_DEFAULT_REGION` (else
//! us-east-1); the endpoint `?endpoint=URL` on the objects URL, else `AWS_ENDPOINT_URL_S3` or
//! `AWS_ENDPOINT_URL`, else AWS's. A store at an endpoint of its own is addressed path-style.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

use anyhow::{Result, bail};
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};

use crate::error::UserError;

/// How long a signed request stays valid.
const SIGNED_FOR: Duration = Duration::from_secs(3600);

/// The largest object one PUT may carry (S3's own limit).
const MAX_PUT: u64 = 5 << 30;

#[derive(Debug, Clone, PartialEq)]
pub struct S3Store {
    pub bucket: String,
    pub prefix: String,
    pub endpoint: Option<String>,
}

impl S3Store {
    pub fn parse(url: &str) -> Result<S3Store> {
        let rest = url.trim_start_matches("s3://");
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
        if bucket.is_empty() {
            bail!(
                UserError::new(format!("objects URL {url} names no bucket"))
                    .hint("give s3://bucket/prefix")
            );
        }
        let mut endpoint = None;
        for kv in query.split('&').filter(|k| !k.is_empty()) {
            match kv.split_once('=') {
                Some(("endpoint", v)) => endpoint = Some(v.to_string()),
                _ => bail!(
                    UserError::new(format!("objects URL {url}: unknown `{kv}`"))
                        .hint("the one option is ?endpoint=http://host:port")
                ),
            }
        }
        Ok(S3Store {
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
            endpoint,
        })
    }

    pub fn describe(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    fn key(&self, hash: &str) -> String {
        let (a, b) = hash.split_at(2.min(hash.len()));
        if self.prefix.is_empty() {
            format!("{a}/{b}")
        } else {
            format!("{}/{a}/{b}", self.prefix)
        }
    }

    fn region() -> String {
        std::env::var("AWS_REGION")
            .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|_| "us-east-1".into())
    }

    fn bucket(&self) -> Result<Bucket> {
        let region = Self::region();
        let custom = self
            .endpoint
            .clone()
            .or_else(|| std::env::var("AWS_ENDPOINT_URL_S3").ok())
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok());
        let (endpoint, style) = match &custom {
            Some(e) => (e.clone(), UrlStyle::Path),
            None => (
                format!("https://s3.{region}.amazonaws.com"),
                UrlStyle::VirtualHost,
            ),
        };
        let url: url::Url = endpoint.parse().map_err(|e| {
            UserError::new(format!("S3 endpoint `{endpoint}` is not a URL")).cause(format!("{e}"))
        })?;
        Bucket::new(url, style, self.bucket.clone(), region).map_err(|e| {
            UserError::new(format!("S3 endpoint `{endpoint}`: {e}"))
                .hint("give an http:// or https:// URL")
                .into()
        })
    }

    /// Credentials as the AWS tools find them.
    fn credentials() -> Result<Credentials> {
        if let (Ok(k), Ok(s)) = (
            std::env::var("AWS_ACCESS_KEY_ID"),
            std::env::var("AWS_SECRET_ACCESS_KEY"),
        ) {
            return Ok(match std::env::var("AWS_SESSION_TOKEN") {
                Ok(t) if !t.is_empty() => Credentials::new_with_token(k, s, t),
                _ => Credentials::new(k, s),
            });
        }
        let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".into());
        let file = std::env::var("AWS_SHARED_CREDENTIALS_FILE")
            .map(std::path::PathBuf::from)
            .ok()
            .or_else(|| {
                std::env::var("HOME")
                    .ok()
                    .map(|h| Path::new(&h).join(".aws/credentials"))
            });
        if let Some(text) = file.and_then(|f| std::fs::read_to_string(f).ok())
            && let Some(c) = profile_credentials(&text, &profile)
        {
            return Ok(c);
        }
        bail!(
            UserError::new("no S3 credentials").hint(format!(
                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or the profile `{profile}` in ~/.aws/credentials"
            ))
        )
    }

    fn agent() -> ureq::Agent {
        ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(15)))
            .http_status_as_error(false)
            .user_agent(concat!("gantry/", env!("CARGO_PKG_VERSION")))
            .build()
            .into()
    }

    fn failed(&self, what: &str, status: u16, body: &str) -> anyhow::Error {
        // S3's XML error: its Code and Message say it best.
        let tag = |t: &str| {
            body.split(&format!("<{t}>"))
                .nth(1)
                .and_then(|r| r.split(&format!("</{t}>")).next())
                .unwrap_or("")
                .to_string()
        };
        UserError::new(format!(
            "{what} on {}: HTTP {status} {} {}",
            self.describe(),
            tag("Code"),
            tag("Message")
        ))
        .hint(match status {
            403 => "check the credentials (AWS_ACCESS_KEY_ID, AWS_PROFILE) and the bucket's policy",
            404 => "check the bucket's name and the endpoint",
            _ => "check the endpoint and that the store answers",
        })
        .into()
    }

    /// Every object the store holds under the prefix: hash, size.
    pub fn list(&self) -> Result<HashMap<String, u64>> {
        let bucket = self.bucket()?;
        let creds = Self::credentials()?;
        let agent = Self::agent();
        let prefix = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        };
        let mut out = HashMap::new();
        let mut token: Option<String> = None;
        loop {
            let mut action = bucket.list_objects_v2(Some(&creds));
            action.with_prefix(prefix.clone());
            if let Some(t) = &token {
                action.with_continuation_token(t.clone());
            }
            let url = action.sign(SIGNED_FOR);
            let mut resp = agent
                .get(url.as_str())
                .call()
                .map_err(|e| self.failed("listing", 0, &e.to_string()))?;
            let status = resp.status().as_u16();
            let text = resp.body_mut().read_to_string()?;
            if status != 200 {
                return Err(self.failed("listing", status, &text));
            }
            let parsed = rusty_s3::actions::ListObjectsV2::parse_response(&text)
                .map_err(|e| anyhow::anyhow!("listing {}: {e}", self.describe()))?;
            for c in parsed.contents {
                let rel = c.key.strip_prefix(&prefix).unwrap_or(&c.key);
                if let Some((a, b)) = rel.split_once('/') {
                    out.insert(format!("{a}{b}"), c.size);
                }
            }
            match parsed.next_continuation_token {
                Some(t) => token = Some(t),
                None => return Ok(out),
            }
        }
    }

    /// Upload a file as the object `hash`.
    pub fn put(&self, hash: &str, src: &Path, progress: &dyn Fn(u64)) -> Result<()> {
        let len = std::fs::metadata(src)?.len();
        if len > MAX_PUT {
            bail!(
                UserError::new(format!(
                    "{hash}: {len} bytes is over the 5 GiB one upload to S3 may carry"
                ))
                .hint("use a directory or ssh objects store for files this large")
            );
        }
        let bucket = self.bucket()?;
        let creds = Self::credentials()?;
        let key = self.key(hash);
        let url = bucket.put_object(Some(&creds), &key).sign(SIGNED_FOR);
        let file = std::fs::File::open(src)?;
        let resp = Self::agent()
            .put(url.as_str())
            .header("Content-Length", len.to_string())
            .send(ureq::SendBody::from_owned_reader(file))
            .map_err(|e| self.failed("uploading", 0, &e.to_string()))?;
        let status = resp.status().as_u16();
        if status != 200 {
            let text = resp.into_body().read_to_string().unwrap_or_default();
            return Err(self.failed(&format!("uploading {hash}"), status, &text));
        }
        progress(len);
        Ok(())
    }

    /// The object `hash` as a stream, or None where the store does not have it.
    pub fn get(&self, hash: &str) -> Result<Option<Box<dyn Read + Send>>> {
        let bucket = self.bucket()?;
        let creds = Self::credentials()?;
        let key = self.key(hash);
        let url = bucket.get_object(Some(&creds), &key).sign(SIGNED_FOR);
        let resp = Self::agent()
            .get(url.as_str())
            .call()
            .map_err(|e| self.failed("downloading", 0, &e.to_string()))?;
        match resp.status().as_u16() {
            200 => Ok(Some(Box::new(resp.into_body().into_reader()))),
            404 => Ok(None),
            s => {
                let text = resp.into_body().read_to_string().unwrap_or_default();
                Err(self.failed(&format!("downloading {hash}"), s, &text))
            }
        }
    }
}

/// A profile's keys from the text of `~/.aws/credentials`.
fn profile_credentials(text: &str, profile: &str) -> Option<Credentials> {
    let mut in_profile = false;
    let (mut key, mut secret, mut token) = (None, None, None);
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_profile = name.trim() == profile;
            continue;
        }
        if !in_profile {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            let v = v.trim().to_string();
            match k.trim() {
                "aws_access_key_id" => key = Some(v),
                "aws_secret_access_key" => secret = Some(v),
                "aws_session_token" => token = Some(v),
                _ => {}
            }
        }
    }
    Some(match token {
        Some(t) => Credentials::new_with_token(key?, secret?, t),
        None => Credentials::new(key?, secret?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_a_bucket_prefix_and_endpoint() {
        let s = S3Store::parse("s3://models/team/objects?endpoint=http://127.0.0.1:9000").unwrap();
        assert_eq!(s.bucket, "models");
        assert_eq!(s.prefix, "team/objects");
        assert_eq!(s.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(s.key("abcdef"), "team/objects/ab/cdef");
        assert!(S3Store::parse("s3:///x").is_err());
        assert!(S3Store::parse("s3://b/p?region=x").is_err());
    }

    #[test]
    fn a_profile_is_read_from_the_credentials_file() {
        let text = "[default]\naws_access_key_id = AKIA1\naws_secret_access_key = s1\n\n[team]\naws_access_key_id=AKIA2\naws_secret_access_key=s2\naws_session_token=t2\n";
        assert!(profile_credentials(text, "team").is_some());
        assert!(profile_credentials(text, "default").is_some());
        assert!(profile_credentials(text, "other").is_none());
    }
}
