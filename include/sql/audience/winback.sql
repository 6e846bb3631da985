-- An audience query for sms_campaign (audience: "winback.sql"). It must return the columns
-- idremote and msisdn, plus every {placeholder} of the message (here first_name).
SELECT idremote, msisdn, first_name
FROM audience
