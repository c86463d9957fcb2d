//! PostgreSQL for tests: a fresh database on the server `scripts/test.sh` starts.

/// A new, empty database named `name` on the server of `IVR_TEST_POSTGRES`, as a URL.
/// `None` when `IVR_SKIP_POSTGRES=1` says the PostgreSQL tests may not run: the caller then
/// returns early, and a `SKIPPED` line on stderr says so (the test harness still counts the
/// test as passed, so the line is the only trace). Without either variable it panics, so a
/// run that should test PostgreSQL never passes without it. CI never sets the variable.
pub fn fresh_database(name: &str) -> Option<String> {
    let base = match std::env::var("IVR_TEST_POSTGRES") {
        Ok(url) => url,
        Err(_) if std::env::var("IVR_SKIP_POSTGRES").as_deref() == Ok("1") => {
            skipped(name);
            return None;
        }
        Err(_) => panic!(
            "IVR_TEST_POSTGRES is not set: run scripts/test.sh (it starts PostgreSQL), or set IVR_SKIP_POSTGRES=1"
        ),
    };
    let name = format!("{name}_{}", std::process::id());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        use sqlx::{Connection, Executor};
        let mut c = sqlx::PgConnection::connect(&base)
            .await
            .expect("connect to PostgreSQL");
        c.execute(format!("DROP DATABASE IF EXISTS {name}").as_str())
            .await
            .expect("drop");
        c.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create");
    });
    let (prefix, _) = base.rsplit_once('/').expect("a database URL");
    Some(format!("{prefix}/{name}"))
}

/// Say loudly that a PostgreSQL test did not run. Written straight to the process's stderr:
/// the harness captures `eprintln!` of passing tests, which would hide the line.
fn skipped(name: &str) {
    use std::io::Write;
    let test = std::thread::current()
        .name()
        .map(str::to_string)
        .unwrap_or_else(|| name.to_string());
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: {test}: PostgreSQL not tested (IVR_SKIP_POSTGRES=1); the test reports ok without testing anything"
    );
}
