//! Survey scores in the reports (issue #12): for each survey question, how often it was
//! asked and answered, its average score and the distribution of its answers, over the
//! window and per bucket of time (the hours of `per_hour` when the report has them, else
//! the days of `per_day`). Figures defined in `docs/calls.md`, "Survey scores".
//!
//! The store counts the answers with `GROUP BY` ([`AnswerCount`]s, one per question,
//! bucket, outcome and key); [`questions`] turns them into [`SurveyQuestion`]s, a pure
//! function, so both stores and the Rust reference give the same figures.

use crate::calls::CallRecord;
use std::collections::BTreeMap;

/// How many times one question got one outcome (and key) in one bucket of time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct AnswerCount {
    /// The survey.
    pub survey: String,
    /// The question.
    pub question: String,
    /// The bucket: the start (Unix milliseconds) of the hour or day the calls started in.
    pub bucket_ms: i64,
    /// `answered`, `timeout`, `invalid` or `hangup`.
    pub outcome: String,
    /// The key that answered, if one did.
    pub answer: Option<String>,
    /// The question's place in its survey (the lowest seen: questions are asked in order).
    pub position: i64,
    /// How many times.
    pub count: u64,
}

/// The answer counts of `records` (all in the window), bucketed by `bucket_ms` (an hour or a
/// day), as the store makes them, in a canonical order.
pub(crate) fn answer_counts(records: &[CallRecord], bucket_ms: i64) -> Vec<AnswerCount> {
    type Key = (String, String, i64, String, Option<String>);
    let mut counts: BTreeMap<Key, (i64, u64)> = BTreeMap::new();
    for r in records {
        let bucket = r.started_ms.div_euclid(bucket_ms) * bucket_ms;
        for (i, a) in r.answers.iter().enumerate() {
            let k = (
                a.survey.clone(),
                a.question.clone(),
                bucket,
                a.outcome.clone(),
                a.answer.clone(),
            );
            let e = counts.entry(k).or_insert((i64::MAX, 0));
            e.0 = e.0.min(i as i64);
            e.1 += 1;
        }
    }
    let mut out: Vec<AnswerCount> = counts
        .into_iter()
        .map(
            |((survey, question, bucket_ms, outcome, answer), (position, count))| AnswerCount {
                survey,
                question,
                bucket_ms,
                outcome,
                answer,
                position,
                count,
            },
        )
        .collect();
    out.sort_unstable();
    out
}

/// One answer key and how often it was given.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct AnswerShare {
    /// The key (`0`-`9`, `*`, `#`).
    pub key: String,
    /// How many answers it gave.
    pub count: u64,
    /// `count / answered`.
    pub share: f64,
}

/// One question's answers in one hour or day.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct ScoreBucket {
    /// Its start (Unix milliseconds).
    pub start_ms: i64,
    /// Its start as text, as in `per_day` or `per_hour`.
    pub start: String,
    /// Times the question was asked in calls started in it.
    pub asked: u64,
    /// Of those, answered with a key.
    pub answered: u64,
    /// The average of the answers with a digit key (`0`-`9`), if any.
    pub average: Option<f64>,
    /// How many answers each key gave (only keys given).
    pub answers: BTreeMap<String, u64>,
}

/// One survey question over the report's window.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct SurveyQuestion {
    /// The survey.
    pub survey: String,
    /// The question.
    pub question: String,
    /// Times it was asked.
    pub asked: u64,
    /// Answered with a key.
    pub answered: u64,
    /// Not answered: `timeouts + invalid + hangups`.
    pub unanswered: u64,
    /// `unanswered / asked`.
    pub unanswered_share: f64,
    /// No key at the last asking.
    pub timeouts: u64,
    /// A wrong key at the last asking.
    pub invalid: u64,
    /// The caller hung up during it.
    pub hangups: u64,
    /// Answers with a digit key (`0`-`9`): those the average is over (a `*` or `#` answer
    /// counts as answered and in the distribution, not in the average).
    pub scored: u64,
    /// The average of the digit answers, each key as its number, if any.
    pub average: Option<f64>,
    /// Each key given, with its share of the answers: digits in order, then the others.
    pub answers: Vec<AnswerShare>,
    /// Per hour (when the report has `per_hour`) or per day, the same buckets as the calls.
    pub buckets: Vec<ScoreBucket>,
}

/// The score of an answer key: `0`-`9` as their number, anything else none.
fn score(key: &str) -> Option<u64> {
    match key.as_bytes() {
        [d @ b'0'..=b'9'] => Some(u64::from(d - b'0')),
        _ => None,
    }
}

/// Sums of one question (or one bucket of it).
#[derive(Default)]
struct Sums {
    asked: u64,
    answered: u64,
    scored: u64,
    total: u64,
    keys: BTreeMap<String, u64>,
    by_outcome: BTreeMap<String, u64>,
}

impl Sums {
    fn add(&mut self, a: &AnswerCount) {
        self.asked += a.count;
        *self.by_outcome.entry(a.outcome.clone()).or_default() += a.count;
        if a.outcome != "answered" {
            return;
        }
        self.answered += a.count;
        // A recorded question's comment is answered with no key: not in the distribution.
        let Some(key) = &a.answer else { return };
        if let Some(s) = score(key) {
            self.scored += a.count;
            self.total += s * a.count;
        }
        *self.keys.entry(key.clone()).or_default() += a.count;
    }

    fn average(&self) -> Option<f64> {
        (self.scored > 0).then(|| self.total as f64 / self.scored as f64)
    }

    fn outcome(&self, o: &str) -> u64 {
        self.by_outcome.get(o).copied().unwrap_or(0)
    }
}

/// The questions of `counts`, in survey order then by their place in it, each over
/// `buckets` (`(start_ms, start)`: the report's hours or days); an answer whose bucket is
/// not one of them counts in the one it falls in, if any (`bucket_ms` long).
pub(crate) fn questions(
    counts: &[AnswerCount],
    buckets: &[(i64, String)],
    bucket_ms: i64,
) -> Vec<SurveyQuestion> {
    let mut by_question: BTreeMap<(&str, &str), (i64, Vec<&AnswerCount>)> = BTreeMap::new();
    for a in counts {
        let e = by_question
            .entry((&a.survey, &a.question))
            .or_insert((i64::MAX, Vec::new()));
        e.0 = e.0.min(a.position);
        e.1.push(a);
    }
    let mut out: Vec<(i64, SurveyQuestion)> = by_question
        .into_iter()
        .map(|((survey, question), (position, rows))| {
            let mut all = Sums::default();
            let mut per: BTreeMap<i64, Sums> = BTreeMap::new();
            for a in &rows {
                all.add(a);
                let start = a.bucket_ms.div_euclid(bucket_ms) * bucket_ms;
                per.entry(start).or_default().add(a);
            }
            let unanswered = all.asked - all.answered;
            let mut answers: Vec<AnswerShare> = all
                .keys
                .iter()
                .map(|(key, &count)| AnswerShare {
                    key: key.clone(),
                    count,
                    share: count as f64 / all.answered as f64,
                })
                .collect();
            answers.sort_by(|a, b| {
                (score(&a.key).is_none(), &a.key).cmp(&(score(&b.key).is_none(), &b.key))
            });
            let buckets = buckets
                .iter()
                .map(|(start_ms, start)| {
                    let s = per.remove(start_ms).unwrap_or_default();
                    ScoreBucket {
                        start_ms: *start_ms,
                        start: start.clone(),
                        asked: s.asked,
                        answered: s.answered,
                        average: s.average(),
                        answers: s.keys,
                    }
                })
                .collect();
            let q = SurveyQuestion {
                survey: survey.to_string(),
                question: question.to_string(),
                asked: all.asked,
                answered: all.answered,
                unanswered,
                unanswered_share: if all.asked == 0 {
                    0.0
                } else {
                    unanswered as f64 / all.asked as f64
                },
                timeouts: all.outcome("timeout"),
                invalid: all.outcome("invalid"),
                hangups: all.outcome("hangup"),
                scored: all.scored,
                average: all.average(),
                answers,
                buckets,
            };
            (position, q)
        })
        .collect();
    out.sort_by(|(pa, a), (pb, b)| (&a.survey, pa, &a.question).cmp(&(&b.survey, pb, &b.question)));
    out.into_iter().map(|(_, q)| q).collect()
}
