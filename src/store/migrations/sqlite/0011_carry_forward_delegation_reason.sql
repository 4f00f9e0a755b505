-- Carrying decisions forward: an approval recorded on a stage because the same person approved
-- an earlier stage of the request (the stage's `carry_forward = true`) names that earlier
-- stage's index in `carried_from`; a decision taken on the stage itself leaves it NULL.
ALTER TABLE approval_decisions ADD COLUMN carried_from INTEGER;
-- Why a delegation was made (optional; given with `gatehouse delegate --reason` or the
-- console's delegation form).
ALTER TABLE delegations ADD COLUMN reason TEXT;
