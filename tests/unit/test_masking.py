import pytest

from logpipe.parsing.masking import mask_content, mask_token


@pytest.mark.parametrize(
    ("token", "masked"),
    [
        ("10.0.0.1:8080", "<*>:<*>"),
        ("/10.250.19.102:54106", "<*>:<*>"),
        ("proxy.example.org:3128", "<*>:<*>"),
        ("blk_-1608999687919862906", "<*>"),
        ("2017-05-16", "<*>-<*>-<*>"),
        ("12:30:01", "<*>:<*>:<*>"),
        ("/usr/lib/libc.so.6", "<*>"),
        ("uid=0", "uid=<*>"),
        ("(uid=1000)", "(uid=<*>)"),
        ("b9000564-fe1a-409b-b8cc-1e88b294cd1d", "<*>"),
        ("0x1f", "<*>"),
        ("-5", "<*>"),
        ("1.25", "<*>"),
        ("132ms", "<*>"),
        ("3.5GB", "<*>"),
        ("mice.c(1234)", "mice.c(<*>)"),
        ("rdd_2_0", "<*>"),
        ("hdfs://namenode:9000/user", "hdfs://<*>"),
        ("Jun", "<*>"),
    ],
)
def test_variables_are_masked(token: str, masked: str) -> None:
    assert mask_token(token) == masked


@pytest.mark.parametrize(
    "token", ["ssh2", "eth0", "IPv6", "Took", "jk2_init", "[preauth]", "hadoop-metrics2.properties"]
)
def test_names_with_few_digits_stay_constant(token: str) -> None:
    assert mask_token(token) == token


def test_http_request_target_and_version_are_one_value() -> None:
    got = mask_content('1.2.3.4 "GET /v2/servers/detail?x=1 HTTP/1.1" status: 200')
    assert got == ["<*>", '"GET', '<*>"', "status:", "<*>"]


def test_masking_keeps_every_token() -> None:
    assert len(mask_content("a  b\tc 12")) == 4
