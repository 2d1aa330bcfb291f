import pytest

from logpipe.parsing.postprocess import loghub_postprocess


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("blk_<*>", "<*>"),
        ("<*>.<*>.<*>:<*>", "<*>:<*>"),
        ("a  b <*><*> c", "a b <*> c"),
        ("x=<*>ms", "x=<*>"),
        ("MININT-<*>", "MININT-<*>"),
        ("<*>/<*>", "<*>/<*>"),
        ("no variables here", "no variables here"),
        ("  padded <*>  ", "padded <*>"),
    ],
)
def test_loghub_conventions(template: str, expected: str) -> None:
    assert loghub_postprocess(template) == expected
