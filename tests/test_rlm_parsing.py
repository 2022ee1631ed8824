"""How replies are read: code blocks and every untidy way of writing FINAL."""

from rlmlab.rlm.parsing import Final, code_blocks, find_final


def test_final_inside_prose():
    assert find_final("After counting, the answer is FINAL(42), as shown.") == Final("answer", "42")


def test_final_nested_parentheses():
    assert find_final("FINAL(f(x) = (a + (b * c)))") == Final("answer", "f(x) = (a + (b * c))")


def test_parenthesis_inside_quoted_answer_does_not_close():
    assert find_final('FINAL("a ) b")') == Final("answer", "a ) b")


def test_apostrophe_is_not_a_quote():
    assert find_final("FINAL(The user's name is Bob) thanks") == Final("answer", "The user's name is Bob")


def test_unclosed_final_takes_rest_of_reply():
    assert find_final("FINAL(the model was cut off here") == Final("answer", "the model was cut off here")


def test_final_var_with_quotes_or_backticks():
    assert find_final('FINAL_VAR("result")') == Final("variable", "result")
    assert find_final("FINAL_VAR(`result`)") == Final("variable", "result")


def test_final_var_that_is_not_a_name_is_ignored():
    assert find_final("FINAL_VAR(two words)") is None


def test_final_inside_code_block_is_not_prose():
    reply = "Running:\n```repl\nFINAL(3)\n```\n"
    assert find_final(reply) is None
    assert code_blocks(reply) == ["FINAL(3)"]


def test_final_after_code_block_is_found():
    reply = "```repl\nx = 2\n```\nThen FINAL_VAR(x)"
    assert code_blocks(reply) == ["x = 2"]
    assert find_final(reply) == Final("variable", "x")


def test_empty_final_is_not_an_answer():
    assert find_final("FINAL()") is None


def test_code_blocks_tolerate_crlf_and_skip_other_languages():
    reply = "```python\nnot_run()\n```\n```repl\r\ny = 2\r\n```\n```repl\n\n```"
    assert code_blocks(reply) == ["y = 2"]
