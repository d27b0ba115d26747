"""Path classes across languages: folder names, file-name patterns, and which one wins."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chunking.paths import PATH_CLASSES, PathClass, is_test_path, path_class

CASES = {
    "test": [
        "tests/test_api.py",
        "test_api.py",
        "pkg/conftest.py",
        "src/flask/tests.py",
        "internal/router/tree_test.go",
        "src/utils.test.ts",
        "src/components/Button.spec.tsx",
        "lib/core.test.mjs",
        "src/__tests__/index.js",
        "app/e2e/login.e2e-spec.ts",
        "src/test/java/com/acme/Parser.java",
        "core/src/main/java/com/acme/ParserTest.java",
        "core/src/main/java/com/acme/ParserTests.java",
        "core/src/main/java/com/acme/TestParser.java",
        "core/src/main/java/com/acme/ParserIT.java",
        "modules/core/src/main/scala/io/circe/CodecSuite.scala",
        "ktor-server/jvm/src/RoutingTest.kt",
        "spec/models/user_spec.rb",
        "lib/rack/request_test.rb",
        "test/plug/conn_test.exs",
        "Tests/AlamofireTests/SessionTests.swift",
        "Source/Networking.swift.Tests/Thing.swift",
        "tests/Dapper.Tests/QueryTests.cs",
        "src/Newtonsoft.Json.Tests/Linq/JTokenTests.cs",
        "absl/strings/str_cat_test.cc",
        "absl/strings/str_cat_unittest.cc",
        "lua/telescope/finders_spec.lua",
        "test/bats.bats",
        "serde/tests/ui/derive.rs",
        "absl/time/testdata/zoneinfo/UTC",
        "tests/fixtures/README.md",
        "t/basic.t",
        "packages/core/__mocks__/fs.js",
        "tests/Feature/ExampleTest.php",
        "test/Spec/ParserSpec.hs",
    ],
    "example": [
        "examples/hello/main.go",
        "_examples/todos-resource/todos.go",
        "docs_src/tutorial/first_steps.py",
        "samples/Basic/Program.cs",
        "demo/app.js",
        "examples/README.md",
        "scripts/example_usage.py",
        "tools/basic_example.rs",
        "config/settings.example.json",
        "AlamofireExample/ViewController.swift",
    ],
    "benchmark": [
        "benches/decode.rs",
        "benchmarks/src/jmh/java/Flow.java",
        "benchmark/run.py",
        "absl/synchronization/mutex_benchmark.cc",
        "tools/bench_tokenize.py",
        "packages/zod/src/object.bench.ts",
        "metrics/src/main/java/com/google/gson/metrics/ParseBenchmark.java",
        "src/Serializer.Benchmarks/Program.cs",
    ],
    "docs": [
        "docs/index.md",
        "doc/api.rst",
        "README.md",
        "README",
        "LICENSE",
        "CHANGES.rst",
        "HISTORY.txt",
        "guides/source/routing.md",
        "documentation/setup.html",
        "man/curl.1",
        "website/versioned_docs/intro.mdx",
    ],
    "generated": [
        "api/v1/service.pb.go",
        "api/v1/service_grpc.pb.go",
        "proto/messages_pb2.py",
        "proto/messages_pb2_grpc.py",
        "proto/messages_pb2.pyi",
        "lib/models.g.dart",
        "src/schema/__generated__/types.ts",
        "dist/axios.min.js",
        "package-lock.json",
        "Cargo.lock",
        "go.sum",
        "client/types.gen.ts",
        "Forms/Main.Designer.cs",
        "pkg/apis/zz_generated.deepcopy.go",
    ],
    "vendored": [
        "vendor/github.com/pkg/errors/errors.go",
        "third_party/zlib/inflate.c",
        "deps/jemalloc/src/arena.c",
        "node_modules/left-pad/index.js",
        "src/pip/_vendor/requests/api.py",
        "extern/googletest/src/gtest.cc",
    ],
    "source": [
        "src/flask/app.py",
        "internal/router/tree.go",
        "src/lib.rs",
        "lib/rack/request.rb",
        "src/main/java/com/acme/Parser.java",
        "src/click/testing.py",
        "latest/contest.py",
        "src/attest/protest.go",
        "pkg/doc.go",
        "setup.py",
        "pyproject.toml",
        "requirements.txt",
        "CMakeLists.txt",
        "src/inspect/spec_helpers_ext.c",
        "Sources/Alamofire/Session.swift",
    ],
}


@pytest.mark.parametrize(
    ("expected", "path"), [(cls, path) for cls, paths in CASES.items() for path in paths]
)
def test_path_class(expected, path):
    assert path_class(path) == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        # Somebody else's code stays vendored, tests and all; generated code beats everything.
        ("third_party/zlib/tests/test_inflate.py", "vendored"),
        ("vendor/x/api.pb.go", "generated"),
        ("tests/protos/fixture_pb2.py", "generated"),
        # A test file among examples or benchmarks is a test; docs folders yield to examples.
        ("examples/tests/test_hello.py", "test"),
        ("benchmarks/test_speed.py", "test"),
        ("docs/examples/quickstart.py", "example"),
        ("docs/benchmarks/results.md", "benchmark"),
    ],
)
def test_precedence(path, expected):
    assert path_class(path) == expected


def test_separators_and_noise():
    assert path_class("tests\\unit\\test_api.py") == "test"
    assert path_class("./src/app.py") == "source"
    assert path_class("src//tests//helper.py") == "test"
    assert path_class("") == "source"
    assert path_class("/") == "source"


def test_is_test_path():
    assert is_test_path("pkg/server_test.go")
    assert is_test_path("src/test/kotlin/FooTest.kt")
    assert not is_test_path("pkg/server.go")
    assert not is_test_path("vendor/x/server_test.go")  # vendored first, not ours to test


def test_classes_are_strings():
    assert set(PATH_CLASSES) == {
        "test", "example", "benchmark", "docs", "generated", "vendored", "source"
    }
    found = path_class("tests/test_api.py")
    assert isinstance(found, str) and found is PathClass.TEST and f"{found}" == "test"
    assert PathClass("docs") is PathClass.DOCS


@given(st.lists(st.text(alphabet="abcXYZ_.-019/\\ ", max_size=12), max_size=6))
def test_any_path_gets_one_known_class(parts):
    assert path_class("/".join(parts)) in PATH_CLASSES
