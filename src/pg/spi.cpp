// Prepared statements (see spi.hpp).
#include "spi.hpp"

namespace optout_pg {

SPIPlanPtr try_prepare_kept(const char* sql, int nargs, const Oid* types, int cursor_options) {
    SPIPlanPtr plan = SPI_prepare_cursor(sql, nargs, const_cast<Oid*>(types), cursor_options);
    if (!plan) return nullptr;
    if (SPI_keepplan(plan) != 0) elog(ERROR, "optout: SPI_keepplan failed");
    return plan;
}

SPIPlanPtr prepare_kept(const char* sql, int nargs, const Oid* types, int cursor_options, const char* what) {
    SPIPlanPtr plan = try_prepare_kept(sql, nargs, types, cursor_options);
    if (!plan) elog(ERROR, "optout: preparing %s failed (%s)", what ? what : sql, SPI_result_code_string(SPI_result));
    return plan;
}

}  // namespace optout_pg
