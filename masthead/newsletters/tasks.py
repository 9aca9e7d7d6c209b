"""Worker tasks: thin wrappers that load by id and call the delivery engine."""

from django_tasks import task

from .delivery import delivery_run


@task(queue_name="default")
def deliver(delivery_id: int) -> dict:
    """Send (or go on sending) a delivery's pending recipients."""
    report = delivery_run(delivery_id)
    return {"sent": report.sent, "failed": report.failed, "finished": report.finished}
