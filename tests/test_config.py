from pathlib import Path

import pytest

from include.customer_performance.config import Settings, load_settings


def test_defaults_match_the_documented_connection_ids():
    s = load_settings({})
    assert (s.customer_db_conn_id, s.sales_db_conn_id, s.crm_api_conn_id) == ("customer_db", "sales_db", "crm_api")
    assert (s.analytics_db_conn_id, s.bi_api_conn_id, s.smtp_conn_id) == ("analytics_db", "bi_api", "smtp_default")


def test_environment_overrides_are_typed():
    s = load_settings(
        {
            "CUSTOMER_PERFORMANCE_EMAIL_TO": "a@x.com, b@x.com",
            "CUSTOMER_PERFORMANCE_BI_BATCH_ROWS": "500",
            "CUSTOMER_PERFORMANCE_FILTER_CONFIG": "/etc/cp/filters.json",
            "CUSTOMER_PERFORMANCE_SALES_DB_CONN_ID": "prod_sales",
        }
    )
    assert s.email_to == ("a@x.com", "b@x.com")
    assert s.bi_batch_rows == 500
    assert s.filter_config == Path("/etc/cp/filters.json")
    assert s.sales_db_conn_id == "prod_sales"


def test_invalid_values_name_the_variable():
    with pytest.raises(ValueError, match="CUSTOMER_PERFORMANCE_BI_BATCH_ROWS"):
        load_settings({"CUSTOMER_PERFORMANCE_BI_BATCH_ROWS": "many"})
    with pytest.raises(ValueError, match="at most|between 1 and 10000"):
        Settings(bi_batch_rows=20_000)
