-- Satisfaction surveys (issue #12): a recorded question's comment. `recording` is the
-- store key of its WAV file in the voicemail folder (`KEY.wav`), set only when the caller
-- spoke; retention deletes the file with the call record.
ALTER TABLE call_answers ADD COLUMN recording TEXT;
