"""Keep batches finishable when their Scores go away with their traces.

A Score is deleted with its trace (``on_delete=CASCADE``): from the admin, a
retention job or any ``QuerySet.delete()``. When the last pending Score of a
batch goes that way, nothing else would ever stamp the batch finished.
"""

from functools import partial

from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from scoring import services
from scoring.choices import ScoreStatus
from scoring.models import Score


@receiver(post_delete, sender=Score, dispatch_uid="scoring-finish-batch-on-score-delete")
def finish_the_batch_of_a_deleted_pending_score(sender, instance: Score, **kwargs) -> None:
    if instance.batch_id and instance.status == ScoreStatus.PENDING:
        transaction.on_commit(partial(services.finish_batch_if_done, batch_id=instance.batch_id))
