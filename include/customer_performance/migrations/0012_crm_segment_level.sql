-- The month-against-month comparison groups by the CRM's segment (consumer, smb, ...): its
-- grouping level is named crm_segment, as the column it groups by, and no longer segment, which
-- is the computed value segment (VIP, regular, new, at-risk) everywhere else.
UPDATE {schema}.period_comparison SET grouping_level = 'crm_segment' WHERE grouping_level = 'segment';
