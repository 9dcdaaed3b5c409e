//! Video jobs, in memory: created queued, rendered in the background, kept
//! after they end so callers can fetch the result. Both counts are
//! bounded: too many unfinished jobs answer 429, and the oldest finished
//! jobs are forgotten first.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use crate::backend::{Progress, Video};
use crate::problem::Problem;

#[derive(Debug, Clone, Copy)]
pub struct JobLimits {
    /// Queued or rendering at once; more answer 429.
    pub max_unfinished: usize,
    /// Finished jobs kept for fetching; past it the oldest go.
    pub max_finished: usize,
}

impl Default for JobLimits {
    fn default() -> JobLimits {
        JobLimits {
            max_unfinished: 32,
            max_finished: 256,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Queued,
    InProgress,
    Completed,
    Failed,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::InProgress => "in_progress",
            Status::Completed => "completed",
            Status::Failed => "failed",
        }
    }

    fn finished(self) -> bool {
        matches!(self, Status::Completed | Status::Failed)
    }
}

#[derive(Debug)]
struct Job {
    id: String,
    status: Status,
    created_at: u64,
    completed_at: Option<u64>,
    seconds: u32,
    size: String,
    progress: Progress,
    video: Option<Arc<Video>>,
    error: Option<Problem>,
}

impl Job {
    /// The job as the API shows it, without the result. `usage` is what
    /// this answer bills: the video's seconds when the job is created,
    /// nothing when polled.
    fn resource(&self, billed_seconds: u32) -> Value {
        let progress = match self.status {
            Status::Completed => 100,
            Status::Queued => 0,
            _ => self.progress.load(Ordering::Relaxed).min(99),
        };
        let mut v = json!({
            "id": self.id,
            "object": "video",
            "status": self.status.as_str(),
            "created_at": self.created_at,
            "seconds": self.seconds,
            "size": self.size,
            "progress": progress,
            "usage": { "images": 0, "video_seconds": billed_seconds },
        });
        if let Some(t) = self.completed_at {
            v["completed_at"] = t.into();
        }
        if let Some(e) = &self.error {
            v["error"] = json!({ "code": e.code, "message": e.detail });
        }
        v
    }
}

#[derive(Default)]
struct Table {
    by_id: HashMap<String, Job>,
    /// Finished jobs, oldest first.
    finished: VecDeque<String>,
    unfinished: usize,
}

#[derive(Default)]
pub struct Jobs {
    limits: JobLimits,
    table: Mutex<Table>,
}

fn random_id() -> Result<String, Problem> {
    const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).map_err(|e| Problem::internal(format!("no randomness: {e}")))?;
    // 252 = 7 * 36: reject the top values so every letter is as likely.
    let mut id = String::from("vid_");
    for b in bytes {
        let b = if b >= 252 { b - 252 } else { b };
        id.push(char::from(ALPHABET[usize::from(b) % ALPHABET.len()]));
    }
    Ok(id)
}

impl Jobs {
    pub fn new(limits: JobLimits) -> Jobs {
        Jobs {
            limits,
            table: Mutex::default(),
        }
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        // A panic elsewhere cannot leave a job half-written: take the table.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A queued job, or 429 when too many are unfinished. Returns its id,
    /// its progress cell and the 202 body.
    pub fn create(
        &self,
        seconds: u32,
        side: u32,
        now: u64,
    ) -> Result<(String, Progress, Value), Problem> {
        let id = random_id()?;
        let mut t = self.table();
        if t.unfinished >= self.limits.max_unfinished {
            return Err(Problem::busy(
                format!("{} videos are already queued or rendering", t.unfinished),
                seconds.into(),
            ));
        }
        let progress = Progress::default();
        let job = Job {
            id: id.clone(),
            status: Status::Queued,
            created_at: now,
            completed_at: None,
            seconds,
            size: format!("{side}x{side}"),
            progress: Arc::clone(&progress),
            video: None,
            error: None,
        };
        let body = job.resource(seconds);
        t.by_id.insert(id.clone(), job);
        t.unfinished += 1;
        Ok((id, progress, body))
    }

    pub fn start(&self, id: &str) {
        if let Some(job) = self.table().by_id.get_mut(id) {
            job.status = Status::InProgress;
        }
    }

    /// Ends a job; returns its resource (without the result) for the
    /// webhook.
    pub fn finish(&self, id: &str, outcome: Result<Video, Problem>, now: u64) -> Option<Value> {
        let mut t = self.table();
        let job = t.by_id.get_mut(id)?;
        if job.status.finished() {
            return None;
        }
        match outcome {
            Ok(video) => {
                job.status = Status::Completed;
                job.video = Some(Arc::new(video));
            }
            Err(problem) => {
                job.status = Status::Failed;
                job.error = Some(problem);
            }
        }
        job.completed_at = Some(now);
        let resource = job.resource(0);
        t.unfinished -= 1;
        t.finished.push_back(id.to_string());
        while t.finished.len() > self.limits.max_finished {
            if let Some(old) = t.finished.pop_front() {
                t.by_id.remove(&old);
            }
        }
        Some(resource)
    }

    /// The job as `GET /v1/videos/{id}` shows it, result included.
    pub fn get(&self, id: &str) -> Option<Value> {
        // Encode outside the lock: a video's base64 is the slow part.
        let (mut resource, video) = {
            let t = self.table();
            let job = t.by_id.get(id)?;
            (job.resource(0), job.video.clone())
        };
        if let Some(video) = video {
            resource["result"] = json!({
                "media_type": video.media_type,
                "b64_data": B64.encode(&video.bytes),
            });
        }
        Some(resource)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn video() -> Video {
        Video {
            media_type: "image/apng",
            bytes: b"frames".to_vec(),
        }
    }

    #[test]
    fn a_job_goes_from_queued_to_completed_with_its_result() {
        let jobs = Jobs::default();
        let (id, progress, created) = jobs.create(3, 128, 100).unwrap();
        assert!(id.starts_with("vid_") && id.len() == 16, "{id}");
        assert!(
            id[4..]
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        );
        assert_eq!(created["status"], "queued");
        assert_eq!(created["usage"], json!({"images": 0, "video_seconds": 3}));
        jobs.start(&id);
        progress.store(40, Ordering::Relaxed);
        let polled = jobs.get(&id).unwrap();
        assert_eq!(
            (polled["status"].as_str(), polled["progress"].as_u64()),
            (Some("in_progress"), Some(40))
        );
        assert_eq!(polled["usage"]["video_seconds"], 0, "a poll bills nothing");
        let hook = jobs.finish(&id, Ok(video()), 105).unwrap();
        assert_eq!(hook["status"], "completed");
        assert!(hook.get("result").is_none(), "webhooks carry no video");
        let done = jobs.get(&id).unwrap();
        assert_eq!(done["progress"], 100);
        assert_eq!(done["completed_at"], 105);
        assert_eq!(done["result"]["b64_data"], B64.encode(b"frames"));
        assert!(jobs.finish(&id, Ok(video()), 106).is_none(), "ends once");
    }

    #[test]
    fn unfinished_jobs_are_capped_and_finished_ones_forgotten_oldest_first() {
        let jobs = Jobs::new(JobLimits {
            max_unfinished: 2,
            max_finished: 1,
        });
        let (a, ..) = jobs.create(1, 128, 0).unwrap();
        let (b, ..) = jobs.create(1, 128, 0).unwrap();
        let busy = jobs.create(1, 128, 0).unwrap_err();
        assert_eq!((busy.status.as_u16(), busy.retry_after), (429, Some(1)));
        jobs.finish(&a, Err(Problem::internal("boom")), 1).unwrap();
        assert_eq!(jobs.get(&a).unwrap()["error"]["code"], "internal");
        jobs.create(1, 128, 0).unwrap();
        jobs.finish(&b, Ok(video()), 2).unwrap();
        assert!(jobs.get(&a).is_none(), "the oldest finished job went");
        assert!(jobs.get(&b).is_some());
    }
}
