/**
 * ONNX Runtime's failure messages, as a caller may read them: its messages name the C++ source file, line and
 * function that failed (`/onnxruntime_src/.../reshape_helper.h:84 onnxruntime::ReshapeHelper::ReshapeHelper(...)`),
 * which say nothing to a client and something about the build to an attacker. The log keeps the whole error.
 */
import { messageOf } from '../errors.js';

const SOURCE_LOCATION = /\S*onnxruntime_src\S*:\d+\s+(?:[\w:~<>]+\([^)]*\)\s*)?/g;

export function runtimeReason(error: unknown): string {
  return messageOf(error).replace(SOURCE_LOCATION, '').trim();
}
