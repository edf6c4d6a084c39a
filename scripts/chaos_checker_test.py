#!/usr/bin/env python3
"""Tests of the chaos suite's checker (scripts/chaos): what it calls a
violation, on stored records shaped as the system writes them. Run by
scripts/test before the chaos runs; `python3 scripts/chaos_checker_test.py`."""

import collections
import importlib.machinery
import importlib.util
import pathlib
import unittest

_path = pathlib.Path(__file__).with_name("chaos")
_loader = importlib.machinery.SourceFileLoader("chaos", str(_path))
_spec = importlib.util.spec_from_loader("chaos", _loader)
chaos = importlib.util.module_from_spec(_spec)
_loader.exec_module(chaos)

ORDER = "de2e11d0-8ed9-5b0d-b368-a94e759b7887"
RUNNER = "chaos_runner_01"
AMOUNT = 1499


def check_payout(payout_events, calls=None):
    """The checker's payout verdicts for one released order whose payout was
    sent at its first attempt, given the payout's events in order."""
    checker = chaos.Checker(cluster=None, tasks=[], timer_now=None)
    escrow = {"status": "RELEASED", "amount_cents": AMOUNT, "runner_id": RUNNER}
    payout = {
        "order_id": ORDER,
        "runner_id": RUNNER,
        "amount_cents": AMOUNT,
        "requested": True,
        "status": "SENT",
        "attempts": 1,
        "payout_account": chaos.payout_account(RUNNER),
    }
    if calls is None:
        calls = [(f"payout:{ORDER}:1", {"operation": "payout", "amount_cents": AMOUNT})]
    totals = collections.Counter()
    checker.check_payout(ORDER, [("escrow-1", escrow)], [], payout, payout_events, calls, [], totals)
    return [v["kind"] for v in checker.violations]


class PayoutRequests(unittest.TestCase):
    def test_a_request_after_the_release_is_one_request(self):
        events = ["payout.release_observed", "payout.requested", "payout.sent"]
        self.assertEqual(check_payout(events), [])

    def test_a_request_held_for_the_release_and_made_at_it_is_one_request(self):
        # CI, seed 14, distributed: the payment service was killed and read
        # the saga's request before the escrow's release; the payout holds
        # it, then makes it when the release arrives (payout.rs,
        # a_request_read_before_the_release_waits_for_it).
        events = ["payout.requested", "payout.release_observed", "payout.requested", "payout.sent"]
        self.assertEqual(check_payout(events), [])

    def test_a_forged_request_held_and_discarded_is_not_counted(self):
        events = [
            "payout.requested",
            "payout.requested",
            "payout.release_observed",
            "payout.request_discarded",
            "payout.requested",
            "payout.sent",
        ]
        self.assertEqual(check_payout(events), [])

    def test_two_requests_after_the_release_are_a_violation(self):
        events = ["payout.release_observed", "payout.requested", "payout.sent", "payout.requested"]
        self.assertEqual(check_payout(events), ["payout_doubled"])

    def test_a_held_request_and_two_requests_after_the_release_are_a_violation(self):
        events = [
            "payout.requested",
            "payout.release_observed",
            "payout.requested",
            "payout.sent",
            "payout.requested",
        ]
        self.assertEqual(check_payout(events), ["payout_doubled"])

    def test_a_payout_waiting_twice_is_a_violation(self):
        events = [
            "payout.release_observed",
            "payout.requested",
            "payout.waiting",
            "payout.waiting",
            "payout.sent",
        ]
        self.assertEqual(check_payout(events), ["payout_doubled"])

    def test_a_payout_sent_before_the_release_is_a_violation(self):
        events = ["payout.requested", "payout.sent", "payout.release_observed"]
        self.assertEqual(check_payout(events), ["payout"])

    def test_an_account_before_the_release_is_no_violation(self):
        events = [
            "payout.account_provided",
            "payout.release_observed",
            "payout.requested",
            "payout.sent",
        ]
        self.assertEqual(check_payout(events), [])

    def test_two_sent_events_are_a_violation(self):
        events = ["payout.release_observed", "payout.requested", "payout.sent", "payout.sent"]
        self.assertEqual(check_payout(events), ["payout_doubled"])

    def test_two_transfers_at_the_processor_are_a_violation(self):
        calls = [
            (f"payout:{ORDER}:1", {"operation": "payout", "amount_cents": AMOUNT}),
            (f"payout:{ORDER}:2", {"operation": "payout", "amount_cents": AMOUNT}),
        ]
        events = ["payout.release_observed", "payout.requested", "payout.sent"]
        self.assertIn("payout_doubled", check_payout(events, calls))


if __name__ == "__main__":
    unittest.main()
