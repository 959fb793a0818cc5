//! A `gantry serve` child process on a free loopback port, and an HTTP client for it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

pub struct Server {
    pub child: Child,
    pub url: String,
    pub token: Option<String>,
    agent: ureq::Agent,
}

impl Server {
    /// Start `gantry --workspace WS [global...] serve --bind 127.0.0.1:0 [extra...]`.
    pub fn start(ws: &Path, global: &[&str], extra: &[&str]) -> Server {
        Self::start_with_env(ws, global, extra, &[])
    }

    /// `start`, with these environment variables set for the server.
    pub fn start_with_env(
        ws: &Path,
        global: &[&str],
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_gantry"))
            .envs(env.iter().copied())
            .arg("--workspace")
            .arg(ws)
            .args(global)
            .args(["serve", "--bind", "127.0.0.1:0"])
            .args(extra)
            .env_remove("GANTRY_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("serve printed {line:?}"))
            .to_string();
        let token = extra
            .iter()
            .position(|a| *a == "--token")
            .map(|i| extra[i + 1].to_string());
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        Server {
            child,
            url,
            token,
            agent,
        }
    }

    /// POST `body` to /api/2.0/mlflow/`endpoint`: (status, JSON answer).
    pub fn post(&self, endpoint: &str, body: Value) -> (u16, Value) {
        let mut req = self
            .agent
            .post(format!("{}/api/2.0/mlflow/{endpoint}", self.url));
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let mut resp = req.send_json(&body).unwrap();
        let status = resp.status().as_u16();
        (status, resp.body_mut().read_json().unwrap())
    }

    /// GET /api/2.0/mlflow/`endpoint` with query pairs.
    pub fn get(&self, endpoint: &str, query: &[(&str, &str)]) -> (u16, Value) {
        let mut req = self
            .agent
            .get(format!("{}/api/2.0/mlflow/{endpoint}", self.url));
        for (k, v) in query {
            req = req.query(*k, *v);
        }
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let mut resp = req.call().unwrap();
        let status = resp.status().as_u16();
        (status, resp.body_mut().read_json().unwrap())
    }

    /// GET a path as text, with the token when there is one: (status, body).
    pub fn text(&self, path: &str) -> (u16, String) {
        let mut req = self.agent.get(format!("{}{path}", self.url));
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let mut resp = req.call().unwrap();
        let status = resp.status().as_u16();
        (status, resp.body_mut().read_to_string().unwrap())
    }

    /// Raw request: method, path, headers, body.
    pub fn raw(&self, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> (u16, String) {
        let mut req = self.agent.post(format!("{}{path}", self.url));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let mut resp = req.send(&body[..]).unwrap();
        let status = resp.status().as_u16();
        (status, resp.body_mut().read_to_string().unwrap_or_default())
    }

    /// A run made through the API in experiment `exp` (created when missing): its id.
    pub fn new_run(&self, exp: &str, name: &str) -> String {
        let (st, e) = self.get("experiments/get-by-name", &[("experiment_name", exp)]);
        let exp_id = if st == 200 {
            e["experiment"]["experiment_id"]
                .as_str()
                .unwrap()
                .to_string()
        } else {
            let (st, c) = self.post("experiments/create", serde_json::json!({"name": exp}));
            assert_eq!(st, 200, "{c}");
            c["experiment_id"].as_str().unwrap().to_string()
        };
        let (st, r) = self.post(
            "runs/create",
            serde_json::json!({"experiment_id": exp_id, "run_name": name, "start_time": 1_700_000_000_000i64}),
        );
        assert_eq!(st, 200, "{r}");
        r["run"]["info"]["run_id"].as_str().unwrap().to_string()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}
