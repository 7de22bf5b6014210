"""TensorFlow Serving's REST API over one SavedModel, without HTTP (`serve.server` adds that).

The request and response formats are tensorflow_model_server's (its util/json_tensor.cc and
model_servers/http_rest_api_handler.cc), so a client written for it works unchanged:

    POST /v1/models/<name>[/versions/<v>]:predict
        {"signature_name": "...", "inputs": {<input>: <nested list>, ...}}   columnar; answers {"outputs": ...}
        {"signature_name": "...", "instances": [{<input>: <value>, ...}, ...]}   rows; answers {"predictions": [...]}
        A string is a JSON string or {"b64": "<base64>"}; NaN and Infinity are accepted, as TF Serving does.
        With a single input, "inputs" may be the bare value and "instances" a list of bare values; with a single
        output, "outputs" is the bare value and each prediction too.
    GET /v1/models/<name>[/versions/<v>]             {"model_version_status": [{"version", "state", "status"}]}
    GET /v1/models/<name>[/versions/<v>]/metadata    {"model_spec": ..., "metadata": {"signature_def": ...}}
    Errors: an HTTP status (TF Serving's mapping of the error code) and {"error": "<message>"}.

Like TF Serving, a signature without inputs (the export's `metadata`) cannot be called over REST; its metadata
response lists every signature. Unlike it, a request whose input has the wrong type, rank or static dimension is
refused before the graph runs, with a message that names the input and the signature's shape, and the graph's own
checks (NaN features, an empty query, ...) come back as their message alone, without TensorFlow's node names.
"""

import base64
import http
import json
import os
import re

import numpy as np
import orjson
import tensorflow as tf
from google.protobuf import json_format
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import saved_model_pb2

from nlvl_tf import errors

PREDICT_PATH = re.compile(
    r"/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
    r":(?P<method>classify|regress|predict)",
    re.IGNORECASE,
)
STATUS_PATH = re.compile(
    r"/v1/models(?:/(?P<name>[^/:]+))?(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?(?:/(?P<metadata>metadata))?",
    re.IGNORECASE,
)
DEFAULT_SIGNATURE = "serving_default"
# TF Serving's HTTP status for each TensorFlow error (model_servers/http_server.cc, ToHTTPStatusCode).
_HTTP_STATUS = {
    tf.errors.InvalidArgumentError: http.HTTPStatus.BAD_REQUEST,
    tf.errors.FailedPreconditionError: http.HTTPStatus.BAD_REQUEST,
    tf.errors.OutOfRangeError: http.HTTPStatus.BAD_REQUEST,
    tf.errors.NotFoundError: http.HTTPStatus.NOT_FOUND,
    tf.errors.ResourceExhaustedError: http.HTTPStatus.TOO_MANY_REQUESTS,
    tf.errors.DeadlineExceededError: http.HTTPStatus.GATEWAY_TIMEOUT,
    tf.errors.UnimplementedError: http.HTTPStatus.NOT_IMPLEMENTED,
    tf.errors.UnavailableError: http.HTTPStatus.SERVICE_UNAVAILABLE,
}
_NUMPY_DTYPES = {
    types_pb2.DT_FLOAT: np.float32,
    types_pb2.DT_DOUBLE: np.float64,
    types_pb2.DT_INT32: np.int32,
    types_pb2.DT_INT64: np.int64,
    types_pb2.DT_INT16: np.int16,
    types_pb2.DT_INT8: np.int8,
    types_pb2.DT_UINT8: np.uint8,
    types_pb2.DT_BOOL: np.bool_,
    types_pb2.DT_STRING: np.object_,
}
_JSON_TYPE_NAMES = {dict: "Object", list: "Array", str: "String", bool: "Boolean", type(None): "Null"}


class ApiError(Exception):
    """A refused request: the HTTP status and the message of its {"error": ...} body."""

    def __init__(self, message, status=http.HTTPStatus.BAD_REQUEST):
        super().__init__(message)
        self.message = message
        self.status = http.HTTPStatus(status)


def error_body(message):
    return {"error": message}


def read_signature_defs(export_dir):
    """{name: SignatureDef} of the SavedModel's "serve" MetaGraph, as TF Serving reads them."""
    saved = saved_model_pb2.SavedModel()
    with open(os.path.join(export_dir, "saved_model.pb"), "rb") as file:
        saved.ParseFromString(file.read())
    for meta_graph in saved.meta_graphs:
        if "serve" in meta_graph.meta_info_def.tags:
            return dict(meta_graph.signature_def)
    raise errors.InputError(f"{export_dir}: the SavedModel has no MetaGraph tagged 'serve'")


class ServedModel:
    """One SavedModel behind TF Serving's REST API, as version `version` of model `name`.

    `handle(method, path, body)` answers a request: (HTTP status, JSON-able body). Thread-safe: any number of
    requests may run at once.
    """

    def __init__(self, export_dir, name="nlvl", version=1):
        if not os.path.isfile(os.path.join(export_dir, "saved_model.pb")):
            raise errors.NotFoundError(f"no SavedModel (saved_model.pb) in {export_dir}")
        self.name = name
        self.version = int(version)
        self.signature_defs = read_signature_defs(export_dir)
        self._loaded = tf.saved_model.load(export_dir)
        self._functions = dict(self._loaded.signatures)

    @staticmethod
    def is_api_path(path):
        return path.lower().startswith("/v1/models")

    def handle(self, method, path, body=b""):
        """(status, body) for a request to an API path; never raises for a bad request."""
        try:
            return http.HTTPStatus.OK, self._dispatch(method, path, body)
        except ApiError as error:
            return error.status, error_body(error.message)
        except tf.errors.OpError as error:
            return _HTTP_STATUS.get(type(error), http.HTTPStatus.INTERNAL_SERVER_ERROR), error_body(graph_error(error))

    def _dispatch(self, method, path, body):
        if method == "POST" and (match := PREDICT_PATH.fullmatch(path)):
            self._check_model(match)
            if match["method"].lower() != "predict":
                raise ApiError(
                    f"{match['method']} needs a signature of that method; this model's signatures are predict "
                    "signatures: use :predict"
                )
            return self.predict(body)
        if method == "GET" and (match := STATUS_PATH.fullmatch(path)):
            if not match["name"]:
                raise ApiError("Missing model name in request.")
            self._check_model(match)
            return self.metadata() if match["metadata"] else self.status()
        raise ApiError(f"Malformed request: {method} {path}", http.HTTPStatus.NOT_FOUND)

    def _check_model(self, match):
        if match["name"] != self.name:
            raise ApiError(f"Servable not found for request: Latest({match['name']})", http.HTTPStatus.NOT_FOUND)
        if match["label"]:
            raise ApiError(f"Unrecognized servable version label: {match['label']}", http.HTTPStatus.NOT_FOUND)
        if match["version"] and int(match["version"]) != self.version:
            raise ApiError(
                f"Servable not found for request: Specific({self.name}, {match['version']})", http.HTTPStatus.NOT_FOUND
            )

    def status(self):
        return {
            "model_version_status": [
                {
                    "version": str(self.version),
                    "state": "AVAILABLE",
                    "status": {"error_code": "OK", "error_message": ""},
                }
            ]
        }

    def metadata(self):
        signature_defs = {
            name: json_format.MessageToDict(
                definition, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
            )
            for name, definition in self.signature_defs.items()
        }
        return {
            "model_spec": {"name": self.name, "signature_name": "", "version": str(self.version)},
            "metadata": {"signature_def": {"signature_def": signature_defs}},
        }

    def predict(self, body):
        """The answer to a :predict request body (bytes); raises ApiError or tf.errors.OpError."""
        request = parse_json(body)
        signature = request.get("signature_name", DEFAULT_SIGNATURE)
        if not isinstance(signature, str):
            raise ApiError(
                f"JSON Value: {_debug_string(request)} not formatted correctly. 'signature_name' key must be a string "
                "value."
            )
        signature = signature or DEFAULT_SIGNATURE
        if signature not in self.signature_defs:
            raise ApiError(
                f'Serving signature name: "{signature}" not found in signature def (this model has: '
                f"{', '.join(sorted(name for name in self.signature_defs if not name.startswith('__')))})"
            )
        definition = self.signature_defs[signature]
        if not definition.inputs:
            raise ApiError(f"Failed to get input map for signature: {signature} (a signature without inputs)")
        if "instances" in request and "inputs" in request:
            raise ApiError("Not formatted correctly: expecting only one of 'inputs' or 'instances' keys to exist")
        if "instances" in request:
            tensors, row_format = instances_to_tensors(request["instances"], definition.inputs), True
        elif "inputs" in request:
            tensors, row_format = inputs_to_tensors(request["inputs"], definition.inputs), False
        else:
            raise ApiError("Missing 'inputs' or 'instances' key")
        check_against_signature(tensors, definition.inputs, signature)
        outputs = self._functions[signature](**{name: tf.constant(value) for name, value in tensors.items()})
        outputs = {name: value.numpy() for name, value in outputs.items()}
        return rows_json(outputs) if row_format else columns_json(outputs)


def parse_json(body):
    """The request object. orjson parses a predict body of features about 6x faster than the json module (3 ms vs
    20 ms for 60 x 1024 floats); the json module reads what orjson refuses: the NaN and Infinity literals TF Serving
    accepts, and it words the errors."""
    if not body:
        raise ApiError("JSON Parse error: The document is empty")
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError:
        try:
            request = json.loads(body)
        except UnicodeDecodeError as error:
            raise ApiError(f"JSON Parse error: Invalid encoding in string at offset: {error.start}") from None
        except json.JSONDecodeError as error:
            raise ApiError(f"JSON Parse error: {error.msg} at offset: {error.pos}") from None
    if not isinstance(request, dict):
        raise ApiError(f"JSON Value: {_debug_string(request)} Is not object")
    return request


def _debug_string(value, limit=256):
    text = json.dumps(value, separators=(",", ":"))
    return text if len(text) <= limit else text[:limit] + "..."


def _dtype_name(dtype):
    return types_pb2.DataType.Name(dtype)[3:].lower()


def inputs_to_tensors(inputs, input_infos):
    """The columnar "inputs" value -> {input name: numpy array}."""
    if not isinstance(inputs, dict) or _is_base64(inputs):
        if len(input_infos) > 1:
            raise ApiError(
                "inputs is a plain value/list, but expecting an object as multiple input tensors required as per "
                f"the signature's inputs ({', '.join(sorted(input_infos))})"
            )
        name = next(iter(input_infos))
        return {name: to_array(inputs, input_infos[name].dtype, name)}
    tensors = {}
    for name, info in input_infos.items():
        if name not in inputs:
            raise ApiError(f"Missing named input: {name} in 'inputs' object.")
        tensors[name] = to_array(inputs[name], info.dtype, name)
    return tensors


def instances_to_tensors(instances, input_infos):
    """The row "instances" list -> {input name: numpy array} batched on a new first axis."""
    if not isinstance(instances, list):
        raise ApiError("Expecting 'instances' to be an list/array")
    if not instances:
        raise ApiError("No values in 'instances' array")
    named = isinstance(instances[0], dict) and not _is_base64(instances[0])
    if not named and len(input_infos) > 1:
        raise ApiError(
            "instances is a plain list, but expecting list of objects as multiple input tensors required as per "
            f"the signature's inputs ({', '.join(sorted(input_infos))})"
        )
    columns = {name: [] for name in input_infos}
    for index, instance in enumerate(instances):
        if not named:
            if isinstance(instance, dict) and not _is_base64(instance):
                raise ApiError(f"Expecting value/list but got object at item {index} of input list")
            columns[next(iter(input_infos))].append(instance)
            continue
        if not isinstance(instance, dict) or _is_base64(instance):
            raise ApiError(f"Expecting object but got list at item {index} of input list")
        if set(instance) != set(input_infos):
            raise ApiError(
                f"Failed to process element: {index} of 'instances' list. JSON object: {_debug_string(instance)} "
                f"keys must be equal to: {','.join(sorted(input_infos))}"
            )
        for name, value in instance.items():
            columns[name].append(value)
    tensors = {}
    for name, values in columns.items():
        items = [
            to_array(value, input_infos[name].dtype, name, f"element {index} of 'instances'")
            for index, value in enumerate(values)
        ]
        for index, item in enumerate(items[1:], 1):
            if item.shape != items[0].shape:
                raise ApiError(
                    f"Failed to process element: {index} key: {name} of 'instances' list. Error: Expecting shape "
                    f"{list(items[0].shape)} but got: {list(item.shape)}"
                )
        tensors[name] = np.stack(items)
    return tensors


def _is_base64(value):
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def to_array(value, dtype, name, where=None):
    """A JSON value (a scalar or nested lists) -> a numpy array of the signature's dtype, refused as TF Serving
    would refuse it: ragged lists, values of the wrong JSON type (a string or boolean for a number, a fraction for an
    integer), strings that are neither text nor {"b64": ...}."""
    context = f"input '{name}'" + (f" ({where})" if where else "")
    if dtype == types_pb2.DT_STRING:
        return _string_array(value, context)
    if dtype not in _NUMPY_DTYPES:
        raise ApiError(f"{context}: conversion of JSON values to {_dtype_name(dtype)} is not supported")
    target = np.dtype(_NUMPY_DTYPES[dtype])
    try:  # fast path for numbers: numpy infers the type and the shape of nested lists in C
        array = np.asarray(value)
    except ValueError:
        array = None
    if array is not None and array.size == 0 and isinstance(value, list):
        return np.zeros(array.shape, target)  # no values: numpy's float64 for [] says nothing of their JSON type
    # numpy makes [1, true] int64 and [0.5, true] float64; TF Serving refuses a boolean among numbers.
    if array is not None and _acceptable_numbers(array.dtype, target) and not (target.kind != "b" and _has_bool(value)):
        if (
            target.kind in "iu"
            and array.size
            and (array.min() < np.iinfo(target).min or array.max() > np.iinfo(target).max)
        ):
            raise ApiError(f"{context}: a value is out of the range of {_dtype_name(dtype)}")
        return array.astype(target)
    _walk(value, _shape_of(value), 0, lambda leaf: _check_number(leaf, target, dtype, context), context)
    # Regular lists of numbers of the right JSON type that numpy kept as objects: integers beyond 64 bits.
    if target.kind == "f":
        try:
            return np.array(value, dtype=np.float64).astype(target)
        except OverflowError:  # beyond float64
            pass
    raise ApiError(f"{context}: a value is out of the range of {_dtype_name(dtype)}")


def _acceptable_numbers(found, target):
    if target.kind == "f":
        return found.kind in "fiu"
    if target.kind in "iu":
        return found.kind in "iu"
    return found.kind == "b"  # bool


def _has_bool(value):
    """Whether a regular nested list (one numpy converted: every list of a level holds the same kind) has a boolean
    leaf; C-speed over the innermost lists."""
    if not isinstance(value, list):
        return isinstance(value, bool)
    if value and isinstance(value[0], list):
        return any(_has_bool(item) for item in value)
    return bool in map(type, value)


def _check_number(leaf, target, dtype, context):
    is_number = isinstance(leaf, (int, float)) and not isinstance(leaf, bool)
    ok = {"f": is_number, "i": is_number and isinstance(leaf, int), "u": is_number and isinstance(leaf, int)}.get(
        target.kind, isinstance(leaf, bool)
    )
    if not ok:
        raise ApiError(
            f"{context}: JSON Value: {_debug_string(leaf)} Type: {_json_type(leaf)} is not of expected type: "
            f"{_dtype_name(dtype)}"
        )


def _json_type(value):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "Number"
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


def _shape_of(value):
    """TF Serving's rule: the shape is read along the first element of every nested list."""
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return shape


def _walk(value, shape, level, check_leaf, context):
    """Visits every leaf, refusing lists of the wrong length or depth (TF Serving's messages, with the input)."""
    if not isinstance(value, list):
        if level != len(shape):
            raise ApiError(
                f"{context}: JSON Value: {_debug_string(value)} found at incorrect level: {level + 1} in the JSON DOM. "
                f"Expected at level: {len(shape)}"
            )
        check_leaf(value)
        return
    if level >= len(shape):
        raise ApiError(f"{context}: Encountered list at unexpected level: {level} expected < {len(shape)}")
    if len(value) != shape[level]:
        raise ApiError(
            f"{context}: Encountered list at unexpected size: {len(value)} at level: {level} expected size: "
            f"{shape[level]}"
        )
    for item in value:
        _walk(item, shape, level + 1, check_leaf, context)


def _string_array(value, context):
    shape = _shape_of(value)
    leaves = []

    def add(leaf):
        if isinstance(leaf, str):
            leaves.append(leaf.encode("utf-8", "surrogatepass"))
        elif _is_base64(leaf):
            try:
                leaves.append(base64.b64decode(leaf["b64"], validate=True))
            except ValueError:
                raise ApiError(f"{context}: Unable to base64 decode") from None
        else:
            raise ApiError(
                f"{context}: JSON Value: {_debug_string(leaf)} Type: {_json_type(leaf)} is not of expected type: string"
            )

    _walk(value, shape, 0, add, context)
    array = np.empty(len(leaves), object)
    array[:] = leaves
    return array.reshape(shape)


def check_against_signature(tensors, input_infos, signature):
    """Refuses inputs whose rank or static dimensions differ from the signature's, naming the input."""
    for name, array in tensors.items():
        shape = input_infos[name].tensor_shape
        if shape.unknown_rank:
            continue
        expected = [dim.size for dim in shape.dim]
        fits = len(expected) == array.ndim and all(e in (-1, got) for e, got in zip(expected, array.shape))
        if not fits:
            wanted = ", ".join("?" if size == -1 else str(size) for size in expected)
            raise ApiError(
                f"input '{name}' of signature '{signature}' must have shape [{wanted}], got {list(array.shape)}"
            )


def _json_values(name, array):
    """A numpy output as JSON-able nested lists (float32 values as the doubles they equal; strings as text, or
    {"b64": ...} for outputs whose name ends in _bytes, as TF Serving writes them)."""
    if array.dtype.kind not in "SOU":
        return array.tolist()
    if name.endswith("_bytes"):
        encode = np.vectorize(lambda item: {"b64": base64.b64encode(item).decode("ascii")}, otypes=[object])
    else:
        encode = np.vectorize(lambda item: item.decode("utf-8", "replace"), otypes=[object])
    return encode(array).tolist() if array.size else array.tolist()


def columns_json(outputs):
    values = {name: _json_values(name, array) for name, array in outputs.items()}
    return {"outputs": next(iter(values.values())) if len(values) == 1 else values}


def rows_json(outputs):
    batch_sizes = {name: (array.shape[0] if array.ndim else None) for name, array in outputs.items()}
    for name, size in batch_sizes.items():
        if size is None:
            raise ApiError(f"Tensor name: {name} has no shape information ")
    if len(set(batch_sizes.values())) > 1:
        raise ApiError(f"outputs have inconsistent batch sizes {batch_sizes}: ask for 'inputs' (columnar) instead")
    values = {name: _json_values(name, array) for name, array in outputs.items()}
    size = next(iter(batch_sizes.values()))
    if len(values) == 1:
        return {"predictions": next(iter(values.values()))}
    return {"predictions": [{name: column[row] for name, column in values.items()} for row in range(size)]}


_ASSERTION = re.compile(r"assertion failed: (.*)")
_BRACKETED = re.compile(r"\[((?:[^\[\]]|\[[^\[\]]*\])*)\]")


def graph_error(error):
    """The readable part of a TensorFlow error raised by the graph: an assertion's message and its values, without
    node names and stack ("duration must be > 0 seconds (got: -2)")."""
    message = str(getattr(error, "message", error))
    found = _ASSERTION.search(message)
    if found:
        groups = _BRACKETED.findall(found.group(1))
        if groups:
            text, condition, _ = groups[0].partition(" : Condition ")
            text = text.strip().rstrip(".")
            values = groups[-1].strip("[] ") if len(groups) > 1 else ""
            if not values:
                return text
            return f"{text} (got: {values})" if condition else f"{text}: {values}"
    lines = [line.strip() for line in message.splitlines()]
    lines = [
        line for line in lines if line and not line.startswith(("[[", "Graph execution error", "Detected at node"))
    ]
    return lines[0] if lines else type(error).__name__
