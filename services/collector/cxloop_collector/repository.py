"""SQL of the collector. Functions take a session and never commit: the caller owns the
transaction."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from cxloop_collector.orm import RatingVoteRow


async def record_vote(
    session: AsyncSession, *, nonce: str, customer: str, survey: str, score: int, event_id: str
) -> bool:
    """Record the score of a rating link; False when the link recorded one already."""
    statement = (
        insert(RatingVoteRow)
        .values(nonce=nonce, customer=customer, survey=survey, score=score, event_id=event_id)
        .on_conflict_do_nothing(index_elements=[RatingVoteRow.nonce])
        .returning(RatingVoteRow.nonce)
    )
    return (await session.scalar(statement)) is not None


async def recorded_score(session: AsyncSession, *, nonce: str) -> int | None:
    """The score a rating link recorded, if any."""
    score = await session.scalar(select(RatingVoteRow.score).where(RatingVoteRow.nonce == nonce))
    return None if score is None else int(score)
