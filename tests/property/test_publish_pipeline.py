"""The publish pipeline (actors.pipeline): whatever order the answers come in, outcomes are
applied in the order they were added, a value known at once waits behind earlier answers, an
answer that is itself a wait keeps its place, and a failed or cancelled wait drops."""

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from actormq.actors.pipeline import DEPTH, Pipeline
from actormq.hooks.results import DROP


class Conn:
    """What the pipeline needs of a Connection: act_on, unthrottle, closed."""

    def __init__(self) -> None:
        self.closed = False
        self.unthrottled = 0

    def act_on(self, then, value) -> bool:
        then(value)
        return True

    def unthrottle(self) -> None:
        self.unthrottled += 1


# per entry: "now" (a value known at once), "wait" (a Future), "rewait" (a Future answered with
# another Future), "fail" (a Future that raises)
KINDS = st.sampled_from(["now", "wait", "wait", "rewait", "fail"])


@settings(max_examples=60, deadline=None)
@given(st.lists(KINDS, min_size=1, max_size=DEPTH), st.randoms(use_true_random=False))
def test_outcomes_are_applied_in_the_order_they_came(kinds, random):
    async def scenario():
        loop = asyncio.get_running_loop()
        conn = Conn()
        pipeline = Pipeline(conn)
        applied = []
        answers = []            # (future, what to answer it with) in a random order
        for number, kind in enumerate(kinds):
            then = (lambda n: lambda value: applied.append((n, value)))(number)
            if kind == "now":
                if pipeline.entries:
                    pipeline.add(number, then)
                else:
                    then(number)        # nothing waits: the Connection acts at once (in_order)
                continue
            future = loop.create_future()
            pipeline.add(future, then)
            answers.append((future, kind, number))
        random.shuffle(answers)
        for future, kind, number in answers:
            if kind == "fail":
                future.set_exception(RuntimeError("plugin failed"))
            elif kind == "rewait":
                later = loop.create_future()
                future.set_result(later)
                loop.call_later(random.random() / 100, later.set_result, number)
            else:
                future.set_result(number)
            await asyncio.sleep(0)
        for _ in range(100):
            if len(applied) == len(kinds):
                break
            await asyncio.sleep(0.005)
        return applied, pipeline, conn

    applied, pipeline, conn = asyncio.run(scenario())
    assert [number for number, _ in applied] == list(range(len(kinds)))
    assert [value for _, value in applied] == [DROP if kind == "fail" else number
                                               for number, kind in enumerate(kinds)]
    assert not pipeline.entries and (conn.unthrottled or all(kind == "now" for kind in kinds))
    assert pipeline.open()


def test_a_full_or_held_back_pipeline_takes_no_new_publish():
    async def scenario():
        loop = asyncio.get_running_loop()
        pipeline = Pipeline(Conn())
        for _ in range(DEPTH - 1):
            pipeline.add(loop.create_future(), lambda value: None)
        still_open = pipeline.open()
        pipeline.add(loop.create_future(), lambda value: None)
        full = pipeline.open()
        return still_open, full

    still_open, full = asyncio.run(scenario())
    assert still_open and not full
    held = Pipeline(Conn())
    held.held_back = True
    assert not held.open()
