//! `tributary query --athena`: SQL on Amazon Athena from the command line.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use tributary_aws::{QueryResult, QueryRun, QueryStatus};

use crate::Error;

/// Runs `sql` in `workgroup`, calling `progress` while it waits, and returns the result.
pub async fn run<Q: QueryRun>(
    q: &Q,
    sql: &str,
    database: &str,
    workgroup: &str,
    poll: Duration,
    timeout: Duration,
    mut progress: impl FnMut(&QueryStatus, Duration),
) -> Result<QueryResult, Error> {
    let started = Instant::now();
    let id = q.start(sql, database, workgroup).await?;
    loop {
        let status = q.status(&id).await?;
        progress(&status, started.elapsed());
        if status.is_done() {
            if status.state != "SUCCEEDED" {
                return Err(format!("query {id} {}: {}", status.state, status.reason.unwrap_or_default()).into());
            }
            return Ok(q.results(&id).await?);
        }
        if started.elapsed() > timeout {
            return Err(format!("query {id} still {} after {:?}; it goes on in Athena", status.state, timeout).into());
        }
        tokio::time::sleep(poll).await;
    }
}

/// The result as an aligned text table.
pub fn table(r: &QueryResult) -> String {
    let cell = |c: &Option<String>| c.clone().unwrap_or_else(|| "NULL".into());
    let mut widths: Vec<usize> = r.columns.iter().map(|c| c.chars().count()).collect();
    for row in &r.rows {
        for (i, c) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell(c).chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| -> String {
        cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect::<Vec<_>>().join(" | ")
    };
    let mut out = String::new();
    let _ = writeln!(out, "{}", line(r.columns.clone()));
    let _ = writeln!(out, "{}", widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("-+-"));
    for row in &r.rows {
        let _ = writeln!(out, "{}", line(row.iter().map(cell).collect()));
    }
    let _ = writeln!(out, "({} rows)", r.rows.len());
    out
}

/// The result as CSV (RFC 4180 quoting; NULL is an empty field).
pub fn csv(r: &QueryResult) -> String {
    let field = |s: &str| {
        if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
    };
    let mut out = String::new();
    let _ = writeln!(out, "{}", r.columns.iter().map(|c| field(c)).collect::<Vec<_>>().join(","));
    for row in &r.rows {
        let _ = writeln!(out, "{}", row.iter().map(|c| field(c.as_deref().unwrap_or(""))).collect::<Vec<_>>().join(","));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result() -> QueryResult {
        QueryResult {
            columns: vec!["branch".into(), "total".into()],
            rows: vec![vec![Some("Paris".into()), Some("-5".into())], vec![Some("a,\"b\"".into()), None]],
        }
    }

    #[test]
    fn renders_tables_and_csv() {
        let t = table(&result());
        assert!(t.starts_with("branch | total\n-------+------\nParis  | -5   \n"), "{t}");
        assert!(t.contains("NULL") && t.ends_with("(2 rows)\n"));
        assert_eq!(csv(&result()), "branch,total\nParis,-5\n\"a,\"\"b\"\"\",\n");
    }
}
