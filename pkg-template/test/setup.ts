import { cleanup } from "@testing-library/react";
import { afterEach } from "vitest";

// Unmount what each test rendered (the library does it by itself only with
// vitest's globals on).
afterEach(() => cleanup());
