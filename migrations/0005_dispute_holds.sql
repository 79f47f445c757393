-- Issue 10: stake held for open disputes, dispute bonds and strikes.
-- Staking.heldOf: stake the SlashingManager holds for open disputes (StakeHeld / StakeReleased).
ALTER TABLE stakers ADD COLUMN held TEXT NOT NULL DEFAULT '000000000000000000000000000000';
-- The provider's stake held by a dispute, which is also each accuser's bond (DisputeOpened.due).
ALTER TABLE disputes ADD COLUMN due TEXT NOT NULL DEFAULT '000000000000000000000000000000';
-- Accusers not struck (yet): the dispute is rebutted when fewer than the quorum remain.
ALTER TABLE disputes ADD COLUMN remaining INTEGER NOT NULL DEFAULT 0;
-- JSON array of the strikes, in order: {"verifier", "order_id", "bytes_served", "penalty"} (AccuserStruck).
ALTER TABLE disputes ADD COLUMN struck TEXT NOT NULL DEFAULT '[]';
-- Superseded: the accusers that shared the equivocation reward (JSON array) and what each got.
ALTER TABLE disputes ADD COLUMN rewarded TEXT;
