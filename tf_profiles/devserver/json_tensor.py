"""TF Serving's JSON tensors, the local server's side of its REST predict API.

Follows tensorflow_serving/util/json_tensor.cc: a request's "instances" (row
format) or "inputs" (columnar format) become TensorProtos of the signature's
dtypes, and output tensors become "predictions" or "outputs", with its rules
and error messages, so that the local server accepts and refuses what TF
Serving does. Every error is a ``RestError`` (INVALID_ARGUMENT unless said).
"""
import base64
import json
from typing import Dict, List

import grpc
import numpy as np
from tensorflow.core.framework import tensor_pb2, types_pb2

from tf_profiles.serving.rest_client import RestError

ROW, COLUMNAR = "instances", "inputs"
_INT32, _INT64, _UINT32, _UINT64 = (range(-2**31, 2**31), range(-2**63, 2**63), range(2**32),
                                    range(2**64))


def _is_int_in(valid):
    return lambda v: type(v) is int and v in valid


def _is_number(value):
    return type(value) in (int, float)


# dtype → (TensorProto field, the JSON values rapidjson accepts for it)
_DTYPES = {
    types_pb2.DT_FLOAT: ("float_val", _is_number),
    types_pb2.DT_DOUBLE: ("double_val", _is_number),
    types_pb2.DT_INT32: ("int_val", _is_int_in(_INT32)),
    types_pb2.DT_INT16: ("int_val", _is_int_in(_INT32)),
    types_pb2.DT_INT8: ("int_val", _is_int_in(_INT32)),
    types_pb2.DT_UINT8: ("int_val", _is_int_in(_INT32)),
    types_pb2.DT_INT64: ("int64_val", _is_int_in(_INT64)),
    types_pb2.DT_UINT32: ("uint32_val", _is_int_in(_UINT32)),
    types_pb2.DT_UINT64: ("uint64_val", _is_int_in(_UINT64)),
    types_pb2.DT_BOOL: ("bool_val", lambda v: type(v) is bool),
    types_pb2.DT_STRING: ("string_val", lambda v: type(v) is str),
}


def _invalid(message: str) -> RestError:
    return RestError(grpc.StatusCode.INVALID_ARGUMENT, message)


def _debug(value) -> str:
    # JsonValueToDebugString: the value as JSON, cut at 256 bytes.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))[:256]


def _json_type(value) -> str:
    if isinstance(value, bool):
        return str(value)
    return {type(None): "Null", dict: "Object", list: "Array", str: "String"}.get(
        type(value), "Number")


def _dtype_name(dtype) -> str:
    return types_pb2.DataType.Name(dtype)[3:].lower()  # DT_FLOAT → "float", as DataTypeString


def _is_b64(value) -> bool:
    return (isinstance(value, dict) and len(value) == 1
            and isinstance(value.get("b64"), str))


# === Request: JSON → TensorProtos ===

def parse_request(body: bytes) -> dict:
    """The request's JSON object (ParseJson)."""
    if not body:
        raise _invalid("JSON Parse error: The document is empty")
    # rapidjson reads bytes as they are and stops after the document
    # (kParseStopWhenDoneFlag): non-UTF-8 strings pass, trailing text is ignored.
    text = body.decode("utf-8", "surrogateescape")
    try:
        document, _ = json.JSONDecoder().raw_decode(text, len(text) - len(text.lstrip()))
    except json.JSONDecodeError as error:
        raise _invalid(f"JSON Parse error: {error.msg} at offset: {error.pos}") from None
    except RecursionError:  # thousands of nested brackets: rapidjson's kParseErrorTermination
        raise _invalid("JSON Parse error: the document is nested too deeply") from None
    except ValueError as error:  # an integer of more digits than Python converts
        raise _invalid(f"JSON Parse error: {error}") from None
    if not isinstance(document, dict):
        raise _invalid(f"JSON Value: {_debug(document)} Is not object")
    return document


def signature_name(document: dict) -> str:
    name = document.get("signature_name", "")
    if not isinstance(name, str):
        raise _invalid(f"JSON Value: {_debug(document)} not formatted correctly. "
                       "'signature_name' key must be a string value.")
    return name


def _shape(value) -> List[int]:
    # GetDenseTensorShape: the sizes along the first elements.
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return shape


def _leaf(value, dtype):
    if isinstance(value, dict):
        if dtype != types_pb2.DT_STRING:
            raise _type_error(value, dtype)
        if not _is_b64(value):
            raise _invalid(f"JSON Value: {_debug(value)} not formatted correctly for base64 data")
        try:
            return base64.b64decode(value["b64"], validate=True)
        except ValueError:
            raise _invalid("Unable to base64 decode") from None
    if dtype not in _DTYPES:
        raise RestError(grpc.StatusCode.UNIMPLEMENTED, f"Conversion of JSON Value: "
                        f"{_debug(value)} to type: {_dtype_name(dtype)}")
    if not _DTYPES[dtype][1](value):
        raise _type_error(value, dtype)
    return _utf8(value) if dtype == types_pb2.DT_STRING else value


def _utf8(text: str) -> bytes:
    # surrogateescape gives back the request's own bytes; a "\ud800" escape
    # is a lone surrogate no bytes stand for, which rapidjson refuses too.
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise _invalid("JSON Parse error: The surrogate pair in string is invalid.") from None


def _type_error(value, dtype) -> RestError:
    return _invalid(f"JSON Value: {_debug(value)} Type: {_json_type(value)} is not of expected "
                    f"type: {_dtype_name(dtype)}")


def _fill(value, level: int, shape: List[int], dtype, out: list):
    """FillTensorProto: appends the values of a dense nested list, row-major."""
    if not isinstance(value, list):
        if level != len(shape):
            raise _invalid(f"JSON Value: {_debug(value)} found at incorrect level: {level + 1} "
                           f"in the JSON DOM. Expected at level: {len(shape)}")
        out.append(_leaf(value, dtype))
        return
    if level >= len(shape):
        raise _invalid(f"Encountered list at unexpected level: {level} expected < {len(shape)}")
    if len(value) != shape[level]:
        raise _invalid(f"Encountered list at unexpected size: {len(value)} at level: {level} "
                       f"expected size: {shape[level]}")
    if level == len(shape) - 1 and dtype == types_pb2.DT_STRING and all(
            type(v) is str for v in value):  # the common case, without a call per string
        out.extend(_utf8(v) for v in value)
        return
    for item in value:
        _fill(item, level + 1, shape, dtype, out)


def _proto(dtype, shape: List[int], values: list) -> tensor_pb2.TensorProto:
    proto = tensor_pb2.TensorProto(dtype=dtype)
    for size in shape:
        proto.tensor_shape.dim.add(size=size)
    getattr(proto, _DTYPES[dtype][0]).extend(values)
    return proto


def _tensor(value, dtype) -> tensor_pb2.TensorProto:
    shape, values = _shape(value), []
    _fill(value, 0, shape, dtype, values)
    return _proto(dtype, shape, values)


def _from_rows(instances: list, infos, inputs):
    """FillTensorMapFromInstancesList: one tensor per input, the rows stacked."""
    named = isinstance(instances[0], dict) and not _is_b64(instances[0])
    if not named and len(infos) > 1:
        raise _invalid("instances is a plain list, but expecting list of objects as multiple "
                       "input tensors required as per tensorinfo_map")
    sizes: Dict[str, int] = {}
    shapes: Dict[str, List[int]] = {}
    values: Dict[str, list] = {}

    def add(value, name):  # AddInstanceItem: every row of an input alike
        if name not in infos:
            raise _invalid(f"JSON object: does not have named input: {name}")
        shape, items = _shape(value), []
        _fill(value, 0, shape, infos[name].dtype, items)
        if name not in sizes:
            sizes[name], shapes[name], values[name] = len(items), shape, []
        elif len(items) != sizes[name]:
            raise _invalid(f"Expecting tensor size: {sizes[name]} but got: {len(items)}")
        elif shape != shapes[name]:
            raise _invalid(f"Expecting shape [{','.join(map(str, shapes[name]))}] but got: "
                           f"[{','.join(map(str, shape))}]")
        values[name].extend(items)

    for index, element in enumerate(instances):
        is_object = isinstance(element, dict) and not _is_b64(element)
        if named:
            if not is_object:
                raise _invalid(f"Expecting object but got list at item {index} of input list")
            for name, value in element.items():
                try:
                    add(value, name)
                except RestError as error:
                    raise _invalid(f"Failed to process element: {index} key: {name} of "
                                   f"'instances' list. Error: {error}") from None
            if set(element) != set(infos):
                raise _invalid(f"Failed to process element: {index} of 'instances' list. JSON "
                               f"object: {_debug(element)} keys must be equal to: "
                               f"{','.join(sorted(infos))}")
        else:
            if is_object:
                raise _invalid(f"Expecting value/list but got object at item {index} of input "
                               "list")
            try:
                add(element, next(iter(infos)))
            except RestError as error:
                raise _invalid(f"Failed to process element: {index} of 'instances' list. "
                               f"Error: {error}") from None
    for name, shape in shapes.items():
        inputs[name].CopyFrom(_proto(infos[name].dtype, [len(instances)] + shape, values[name]))


def _from_columns(value, infos, inputs):
    """FillTensorMapFromInputsMap: a bare value for a single input, else an object."""
    if not isinstance(value, dict) or _is_b64(value):
        if len(infos) > 1:
            raise _invalid("inputs is a plain value/list, but expecting an object as multiple "
                           "input tensors required as per tensorinfo_map")
        name = next(iter(infos))
        inputs[name].CopyFrom(_tensor(value, infos[name].dtype))
        return
    for name in sorted(infos):  # other keys are ignored, as in TF Serving
        if name not in value:
            raise _invalid(f"Missing named input: {name} in 'inputs' object.")
        inputs[name].CopyFrom(_tensor(value[name], infos[name].dtype))


def fill_inputs(document: dict, infos, inputs) -> str:
    """Fills ``inputs`` (PredictRequest.inputs) from the request; returns ROW or COLUMNAR.

    Args:
      document: the request's JSON object.
      infos: the signature's inputs (name → TensorInfo).
    """
    if ROW in document and COLUMNAR in document:
        raise _invalid(f"JSON Value: {_debug(document)} Not formatted correctly expecting only "
                       "one of 'inputs' or 'instances' keys to exist ")
    if ROW in document:
        if not isinstance(document[ROW], list):
            raise _invalid(f"JSON Value: {_debug(document)} Expecting 'instances' to be an "
                           "list/array")
        if not document[ROW]:
            raise _invalid(f"JSON Value: {_debug(document)} No values in 'instances' array")
        _from_rows(document[ROW], infos, inputs)
        return ROW
    if COLUMNAR in document:
        _from_columns(document[COLUMNAR], infos, inputs)
        return COLUMNAR
    raise _invalid("Missing 'inputs' or 'instances' key")


# === Response: tensors → JSON ===

def _json_values(name: str, array: np.ndarray):
    """Nested lists of an output; strings as text, base64 only for aliases ending in _bytes.

    Floats are written as Python writes the float32's exact value (TF Serving
    writes the shortest decimal of up to 9 digits); both read back as the same
    float32, NaN and ±Infinity alike.
    """
    if array.dtype != object:
        return array.tolist()
    if name.endswith("_bytes"):
        values = [{"b64": base64.b64encode(v).decode()} for v in array.ravel()]
    else:  # raw bytes, as TF Serving writes them (valid UTF-8 for any text)
        values = [v.decode("utf-8", "surrogateescape") for v in array.ravel()]
    return np.array(values, dtype=object).reshape(array.shape).tolist()


def response(outputs: Dict[str, np.ndarray], request_format: str) -> dict:
    """MakeJsonFromTensors: {"predictions": rows} or {"outputs": columns}."""
    values = {name: _json_values(name, array) for name, array in outputs.items()}
    if request_format == COLUMNAR:
        return {"outputs": next(iter(values.values())) if len(values) == 1 else values}
    batch = None
    for name, array in outputs.items():
        if array.ndim == 0:
            raise _invalid(f"Tensor name: {name} has no shape information ")
        if batch is not None and array.shape[0] != batch:
            raise _invalid(f"Tensor name: {name} has inconsistent batch size: "
                           f"{array.shape[0]} expecting: {batch}")
        batch = array.shape[0]
    if len(values) == 1:
        return {"predictions": next(iter(values.values()))}
    return {"predictions": [{name: rows[i] for name, rows in values.items()}
                            for i in range(batch)]}
