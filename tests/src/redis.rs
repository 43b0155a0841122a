//! A private `redis-server` for one test binary: free 127.0.0.1 port, its own directory, no
//! persistence (or an fsynced append-only file, for restart tests). Not a Redis client: the only command the harness itself sends is `PING`.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::process::{self, Daemon};

pub struct Redis {
    daemon: Daemon,
    port: u16,
    aof: bool,
    _dir: tempfile::TempDir,
}

impl Redis {
    /// Starts `redis-server` (from `$REDIS_SERVER` or PATH) and waits until it answers PING.
    pub fn start() -> Redis {
        Self::start_with(false)
    }

    /// Like [`Redis::start`], with the append-only file on and fsynced on every write, as a
    /// deployment that must not lose accepted jobs runs it; it survives [`Redis::restart`].
    pub fn start_durable() -> Redis {
        Self::start_with(true)
    }

    fn start_with(aof: bool) -> Redis {
        let dir = process::fixture_dir("redis");
        let mut last_log = String::new();
        // A free port can be taken between choosing it and binding it; try a few.
        for _attempt in 0..3 {
            let port = process::free_port();
            match spawn(port, aof, dir.path()) {
                Ok(daemon) => {
                    return Redis {
                        daemon,
                        port,
                        aof,
                        _dir: dir,
                    };
                }
                Err(log) => last_log = log,
            }
        }
        panic!("redis-server did not answer PING on 127.0.0.1 after 3 tries; its log:\n{last_log}");
    }

    /// Kills the server with SIGKILL and starts it again on the same port and directory.
    pub fn restart(&mut self, down_for: Duration) {
        // SAFETY: kill(2) on our own child.
        unsafe {
            libc::kill(self.daemon.pid() as libc::pid_t, libc::SIGKILL);
        }
        while self.daemon.exited().is_none() {
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(down_for);
        self.daemon = spawn(self.port, self.aof, self._dir.path())
            .unwrap_or_else(|log| panic!("redis-server did not come back: {log}"));
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Sends a raw inline `PING` and returns the reply line (`+PONG` when healthy).
    pub fn ping(&self) -> std::io::Result<String> {
        ping(self.port)
    }

    pub fn pid(&self) -> u32 {
        self.daemon.pid()
    }
}

fn spawn(port: u16, aof: bool, dir: &std::path::Path) -> Result<Daemon, String> {
    let program = std::env::var_os("REDIS_SERVER")
        .map(PathBuf::from)
        .or_else(|| process::which("redis-server"))
        .unwrap_or_else(|| {
            panic!(
                "redis-server is not on PATH: run scripts/install-deps (apt package redis-server)"
            )
        });
    let mut command = Command::new(&program);
    command
        .args(["--bind", "127.0.0.1", "--port"])
        .arg(port.to_string())
        .args(["--save", "", "--daemonize", "no"])
        .args(["--protected-mode", "yes", "--logfile", ""])
        .arg("--dir")
        .arg(dir);
    if aof {
        command.args(["--appendonly", "yes", "--appendfsync", "always"]);
    } else {
        command.args(["--appendonly", "no"]);
    }
    let log = dir.join(format!(
        "redis-{port}-{}.log",
        uuid::Uuid::new_v4().simple()
    ));
    let mut daemon = Daemon::spawn("redis-server", command, &log);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if daemon.exited().is_some() {
            break;
        }
        if ping(port).map(|r| r == "+PONG").unwrap_or(false) {
            return Ok(daemon);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(daemon.log_tail(20))
}

fn ping(port: u16) -> std::io::Result<String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(b"PING\r\n")?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line)?;
    Ok(line.trim_end().to_string())
}
