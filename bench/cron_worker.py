"""apiary with fifty jobs on one cron, for `bench.cron`."""

from cron.jobs import Job, JobTable
from worker import define_worker

JOBS = 50
CRON = "*/5 * * * *"
WORKER = define_worker(
    JobTable(
        Job(name=f"job{n:02}", path=f"/cron/job{n:02}", schedules={"development": CRON})
        for n in range(JOBS)
    )
)
